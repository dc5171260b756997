/*
 * http.h - the HTTP pieces of duroxlua, below the Lua binding and beside the engine (neither
 * the engine nor the providers use them): a client on libcurl (one request at a time, TLS
 * verification on unless turned off), webhook delivery with its retry policy and HMAC-SHA256
 * signature, and a minimal blocking HTTP/1.1 server for `duroxlua exporter` (one connection
 * at a time, bounded request size and time). Used by src/lua/binding_net.c.
 */
#ifndef DUROX_NET_HTTP_H
#define DUROX_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* ---- client ------------------------------------------------------------------------------ */

typedef struct net_http_request {
	const char *method;         /* "GET", "POST", ...; NULL means GET (POST when body is set) */
	const char *url;            /* http:// or https:// only */
	const char *const *headers; /* "Name: value" lines */
	size_t nheaders;
	const char *body; /* NULL: none */
	size_t body_len;
	long timeout_ms;     /* the whole request, connecting included; 0 means 10000 */
	int insecure;        /* nonzero: do not verify the TLS peer and host name */
	size_t max_response; /* bytes of response body kept (the rest is read and dropped); 0 means 1 MiB */
} net_http_request;

typedef struct net_http_response {
	long status; /* the HTTP status; 0 when no response arrived */
	char *body;  /* malloc'd, NUL-terminated (may be truncated to max_response) */
	size_t body_len;
	char *retry_after; /* the Retry-After header's value, or NULL */
	char *content_type;
	int transport; /* nonzero: the request failed below HTTP (connect, TLS, timeout, reset...) */
	int timed_out;
	char error[256]; /* one line for a transport failure */
} net_http_response;

/* Performs rq. Returns 0 when a response arrived (any status) or when the transport failed
 * (rs->transport set, message in rs->error); -1 for a request that cannot be made (bad URL
 * scheme, out of memory: message in rs->error). rs is zeroed first; free it with
 * net_http_response_free in every case. */
int net_http_perform(const net_http_request *rq, net_http_response *rs);
void net_http_response_free(net_http_response *rs);

/* ---- webhooks ----------------------------------------------------------------------------- */

/* Sleeps ms; a nonzero return stops the delivery (the caller was interrupted). */
typedef int (*net_wait_fn)(void *ud, int64_t ms);

typedef struct net_webhook {
	const char *url;
	const char *secret; /* NULL: unsigned */
	size_t secret_len;
	const char *const *headers; /* extra "Name: value" lines */
	size_t nheaders;
	long timeout_ms;        /* per attempt; 0 means 10000 */
	int max_attempts;       /* 0 means 8 */
	int64_t backoff_ms;     /* first retry delay; 0 means 500 */
	int64_t max_backoff_ms; /* 0 means 60000; also caps Retry-After */
	int insecure;
	net_wait_fn wait;
	void *wait_ud;
} net_webhook;

typedef struct net_webhook_result {
	int delivered; /* a 2xx answer arrived */
	int attempts;
	long status; /* of the last attempt (0: no response) */
	int stopped; /* the wait function stopped it */
	char error[256];
} net_webhook_result;

/*
 * POSTs body (JSON) to the webhook until a 2xx answer or the attempt cap: retried after a
 * transport failure, 408, 429 and 5xx, waiting backoff * 2^(n-1) (capped) with full jitter,
 * or what Retry-After asks (seconds or an HTTP date; capped); any other answer ends it at
 * once. Every attempt carries the same Idempotency-Key (key), Content-Type application/json,
 * User-Agent duroxlua/VERSION, X-Duroxlua-Attempt: n, and, with a secret,
 * X-Duroxlua-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>.
 * Returns 0 (the outcome in *res) or -1 when the request cannot be made (res->error).
 */
int net_webhook_post(const net_webhook *wh, const char *body, size_t len, const char *key, net_webhook_result *res);

/* The delay before attempt n + 1 (n >= 1) under wh's backoff, given a Retry-After value
 * (may be NULL) and a random number r in [0, 1): exposed for the unit tests. */
int64_t net_webhook_delay(const net_webhook *wh, int n, const char *retry_after, int64_t now_ms, double r);

/* The signature header value for body at unix time t, into out (cap >= 80). */
void net_webhook_signature(const char *secret, size_t secret_len, int64_t t, const char *body, size_t len, char *out,
                           size_t cap);

/* ---- server --------------------------------------------------------------------------------- */

typedef struct net_server net_server;

/* Listens on host:port (host NULL: 127.0.0.1; port 0: any free port). Returns 0 and *out, or
 * -1 with a one-line message in err. */
int net_server_open(const char *host, int port, net_server **out, char *err, size_t errlen);
/* The port actually bound. */
int net_server_port(const net_server *s);
void net_server_close(net_server *s);

typedef struct net_server_request {
	char method[16];
	char path[1024]; /* the request target (path and query) */
	char peer[64];   /* the client's address */
	int fd;          /* the connection, -1 once answered */
} net_server_request;

/* Waits up to timeout_ms for a connection and reads its request head (at most 8 KiB, within
 * read_timeout_ms). Returns 1 with *rq filled, 0 when nothing arrived in time, -1 on a server
 * failure (err). A malformed request is answered 400 and closed here (returns 0). */
int net_server_accept(net_server *s, int64_t timeout_ms, int64_t read_timeout_ms, net_server_request *rq, char *err,
                      size_t errlen);
/* Answers and closes rq's connection (writes within write_timeout_ms; a client that went away
 * is not an error). */
void net_server_respond(net_server_request *rq, int status, const char *content_type, const char *body, size_t len,
                        int64_t write_timeout_ms);

#endif
