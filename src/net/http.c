/*
 * http.c - the HTTP client on libcurl and webhook delivery (see http.h). One easy handle per
 * request (a follower posts a batch every few seconds at most; connection reuse is not worth
 * the state). curl_global_init runs once, on the first request.
 */
#define _POSIX_C_SOURCE 200809L
#include "net/http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "durox.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE ((size_t)1 << 20)

static int curl_ready;

static int ensure_curl(void)
{
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -1;
		curl_ready = 1;
	}
	return 0;
}

typedef struct sink {
	net_http_response *rs;
	size_t cap, max;
	int oom;
} sink;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	sink *s = ud;
	size_t len = size * n;
	net_http_response *rs = s->rs;
	size_t keep = rs->body_len >= s->max ? 0 : (len < s->max - rs->body_len ? len : s->max - rs->body_len);
	if (keep > 0) {
		if (rs->body_len + keep + 1 > s->cap) {
			size_t ncap = s->cap ? s->cap : 1024;
			while (ncap < rs->body_len + keep + 1)
				ncap *= 2;
			char *nb = realloc(rs->body, ncap);
			if (nb == NULL) {
				s->oom = 1;
				return 0; /* aborts the transfer */
			}
			rs->body = nb;
			s->cap = ncap;
		}
		memcpy(rs->body + rs->body_len, p, keep);
		rs->body_len += keep;
		rs->body[rs->body_len] = '\0';
	}
	return len;
}

/* Keeps the headers the callers look at (the last response's, after any 100 Continue). */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	sink *s = ud;
	size_t len = size * n;
	static const struct {
		const char *name;
		size_t off;
	} wanted[] = {
	        {"retry-after:", offsetof(net_http_response, retry_after)},
	        {"content-type:", offsetof(net_http_response, content_type)},
	};
	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new status line: forget earlier headers */
		free(s->rs->retry_after);
		free(s->rs->content_type);
		s->rs->retry_after = s->rs->content_type = NULL;
		return len;
	}
	for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
		size_t k = strlen(wanted[i].name);
		if (len > k && strncasecmp(p, wanted[i].name, k) == 0) {
			const char *v = p + k;
			size_t vl = len - k;
			while (vl > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
				vl--;
			char **slot = (char **)((char *)s->rs + wanted[i].off);
			free(*slot);
			*slot = strndup(v, vl);
		}
	}
	return len;
}

int net_http_perform(const net_http_request *rq, net_http_response *rs)
{
	memset(rs, 0, sizeof *rs);
	if (rq->url == NULL || (strncasecmp(rq->url, "http://", 7) != 0 && strncasecmp(rq->url, "https://", 8) != 0)) {
		snprintf(rs->error, sizeof rs->error, "unsupported URL '%s' (expected http:// or https://)",
		         rq->url ? rq->url : "");
		return -1;
	}
	if (ensure_curl() != 0) {
		snprintf(rs->error, sizeof rs->error, "cannot initialise libcurl");
		return -1;
	}
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(rs->error, sizeof rs->error, "out of memory");
		return -1;
	}
	struct curl_slist *hdrs = NULL;
	int rc = 0;
	for (size_t i = 0; i < rq->nheaders; i++) {
		struct curl_slist *n = curl_slist_append(hdrs, rq->headers[i]);
		if (n == NULL) {
			snprintf(rs->error, sizeof rs->error, "out of memory");
			rc = -1;
			goto done;
		}
		hdrs = n;
	}
	/* no "Expect: 100-continue" round trip before a body */
	struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
	if (n == NULL) {
		snprintf(rs->error, sizeof rs->error, "out of memory");
		rc = -1;
		goto done;
	}
	hdrs = n;
	sink sk = {rs, 0, rq->max_response ? rq->max_response : DEFAULT_MAX_RESPONSE, 0};
	char errbuf[CURL_ERROR_SIZE] = "";
	const char *method = rq->method ? rq->method : rq->body ? "POST" : "GET";
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, rq->timeout_ms > 0 ? rq->timeout_ms : (long)DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, rq->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, rq->insecure ? 0L : 2L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sk);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &sk);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else {
		if (strcmp(method, "POST") == 0)
			curl_easy_setopt(c, CURLOPT_POST, 1L);
		else
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(rq->body ? rq->body_len : 0));
	}
	CURLcode cc = curl_easy_perform(c);
	if (sk.oom) {
		snprintf(rs->error, sizeof rs->error, "out of memory");
		rc = -1;
	} else if (cc != CURLE_OK) {
		rs->transport = 1;
		rs->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
		snprintf(rs->error, sizeof rs->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
		long st = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		rs->status = 0;
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
	}
	if (rs->body == NULL && rc == 0) {
		rs->body = calloc(1, 1);
		if (rs->body == NULL) {
			snprintf(rs->error, sizeof rs->error, "out of memory");
			rc = -1;
		}
	}
done:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}

void net_http_response_free(net_http_response *rs)
{
	if (rs == NULL)
		return;
	free(rs->body);
	free(rs->retry_after);
	free(rs->content_type);
	rs->body = rs->retry_after = rs->content_type = NULL;
}

/* ---- webhooks --------------------------------------------------------------------------------- */

/* Seconds of a Retry-After value (delta-seconds or an HTTP date), or -1. */
static int64_t retry_after_ms(const char *v, int64_t now_ms)
{
	if (v == NULL || *v == '\0')
		return -1;
	char *end;
	long long secs = strtoll(v, &end, 10);
	if (end != v && *end == '\0' && secs >= 0)
		return (int64_t)secs * 1000;
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	char wd[4], mon[4], tz[4];
	int day, year, hh, mm, ss;
	if (sscanf(v, "%3s, %d %3s %d %d:%d:%d %3s", wd, &day, mon, &year, &hh, &mm, &ss, tz) != 8 ||
	    strcmp(tz, "GMT") != 0)
		return -1;
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			m = i;
	if (m < 0)
		return -1;
	char iso[40];
	snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, m + 1, day, hh, mm, ss);
	int64_t at;
	if (time_parse_iso(iso, strlen(iso), &at) != 0)
		return -1;
	return at > now_ms ? at - now_ms : 0;
}

int64_t net_webhook_delay(const net_webhook *wh, int n, const char *retry_after, int64_t now_ms, double r)
{
	int64_t base = wh->backoff_ms > 0 ? wh->backoff_ms : 500;
	int64_t cap = wh->max_backoff_ms > 0 ? wh->max_backoff_ms : 60000;
	int64_t d = base;
	for (int i = 1; i < n && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* full jitter over the upper half: spreads retries of many followers, keeps the growth */
	d = d / 2 + (int64_t)((double)(d - d / 2) * r);
	int64_t ra = retry_after_ms(retry_after, now_ms);
	if (ra >= 0) {
		d = ra;
		if (d > cap)
			d = cap;
	}
	return d;
}

void net_webhook_signature(const char *secret, size_t secret_len, int64_t t, const char *body, size_t len, char *out,
                           size_t cap)
{
	char ts[24];
	size_t tl = (size_t)snprintf(ts, sizeof ts, "%lld.", (long long)t);
	char *msg = malloc(tl + len + 1);
	if (msg == NULL) {
		snprintf(out, cap, "t=%lld,v1=", (long long)t); /* unsigned: the receiver rejects it */
		return;
	}
	memcpy(msg, ts, tl);
	memcpy(msg + tl, body, len);
	uint8_t mac[SHA256_LEN];
	hmac_sha256(secret, secret_len, msg, tl + len, mac);
	free(msg);
	char hex[2 * SHA256_LEN + 1];
	hex_encode(mac, SHA256_LEN, hex);
	snprintf(out, cap, "t=%lld,v1=%s", (long long)t, hex);
}

static double jitter(void)
{
	static unsigned long long x;
	if (x == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		x = (unsigned long long)ts.tv_nsec * 2654435761ULL ^ (unsigned long long)ts.tv_sec;
		if (x == 0)
			x = 88172645463325252ULL;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (double)(x >> 11) / 9007199254740992.0;
}

static int retryable(const net_http_response *rs)
{
	if (rs->transport)
		return 1;
	return rs->status == 408 || rs->status == 429 || (rs->status >= 500 && rs->status <= 599);
}

int net_webhook_post(const net_webhook *wh, const char *body, size_t len, const char *key, net_webhook_result *res)
{
	memset(res, 0, sizeof *res);
	int max = wh->max_attempts > 0 ? wh->max_attempts : 8;
	size_t nh = wh->nheaders + 6;
	char **lines = calloc(nh, sizeof *lines);
	if (lines == NULL) {
		snprintf(res->error, sizeof res->error, "out of memory");
		return -1;
	}
	int rc = 0;
	for (int attempt = 1; attempt <= max; attempt++) {
		size_t k = 0;
		for (size_t i = 0; i < wh->nheaders; i++)
			lines[k++] = strdup(wh->headers[i]);
		char line[512];
		lines[k++] = strdup("Content-Type: application/json");
		lines[k++] = strdup("User-Agent: duroxlua/" DUROX_VERSION);
		snprintf(line, sizeof line, "Idempotency-Key: %s", key);
		lines[k++] = strdup(line);
		snprintf(line, sizeof line, "X-Duroxlua-Attempt: %d", attempt);
		lines[k++] = strdup(line);
		if (wh->secret != NULL) {
			char sig[128];
			net_webhook_signature(wh->secret, wh->secret_len, time_now_ms() / 1000, body, len, sig,
			                      sizeof sig);
			snprintf(line, sizeof line, "X-Duroxlua-Signature: %s", sig);
			lines[k++] = strdup(line);
		}
		int oom = 0;
		for (size_t i = 0; i < k; i++)
			oom |= lines[i] == NULL;
		net_http_response rs;
		net_http_request rq = {"POST",       wh->url, (const char *const *)lines, k, body, len, wh->timeout_ms,
		                       wh->insecure, 4096};
		int r = oom ? -1 : net_http_perform(&rq, &rs);
		for (size_t i = 0; i < k; i++) {
			free(lines[i]);
			lines[i] = NULL;
		}
		if (oom) {
			snprintf(res->error, sizeof res->error, "out of memory");
			rc = -1;
			break;
		}
		res->attempts = attempt;
		if (r != 0) {
			snprintf(res->error, sizeof res->error, "%s", rs.error);
			net_http_response_free(&rs);
			rc = -1;
			break;
		}
		res->status = rs.status;
		if (!rs.transport && rs.status >= 200 && rs.status <= 299) {
			res->delivered = 1;
			res->error[0] = '\0';
			net_http_response_free(&rs);
			break;
		}
		if (rs.transport)
			snprintf(res->error, sizeof res->error, "%s", rs.error);
		else
			snprintf(res->error, sizeof res->error, "the receiver answered HTTP %ld", rs.status);
		int again = retryable(&rs) && attempt < max;
		int64_t delay = again ? net_webhook_delay(wh, attempt, rs.retry_after, time_now_ms(), jitter()) : 0;
		net_http_response_free(&rs);
		if (!again)
			break;
		if (wh->wait != NULL) {
			if (wh->wait(wh->wait_ud, delay) != 0) {
				res->stopped = 1;
				break;
			}
		} else {
			struct timespec ts = {(time_t)(delay / 1000), (long)(delay % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	free(lines);
	return rc;
}
