/*
 * binding_net.c - HTTP for Lua (src/net): durox.http (one request on libcurl), durox.webhook
 * (an object whose deliver posts a batch with retries, Idempotency-Key and signature),
 * durox.hmac_sha256, and durox.http_server (the exporter's minimal server). Misuse raises;
 * a request that cannot be made or delivered returns nil, message, code. Waits between
 * retries sleep inside a protected call so Ctrl-C gets through. Added to the module table by
 * lx_open_net (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/lx.h"
#include "net/http.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#define LX_WEBHOOK "durox.Webhook"
#define LX_SERVER "durox.HttpServer"
#define LX_REQUEST "durox.HttpRequest"

/* ---- option readers ------------------------------------------------------------------- */

/* A required text field. */
static const char *need_text(const lx_opts *o, const char *k)
{
	const char *v = lx_opt_text(o, k);
	if (v == NULL)
		lx_opt_error(o, k, "is required");
	return v;
}

/* Header lines from field k: a list of "Name: value" or a map name -> value. Pushes a table
 * that keeps the strings alive and fills lines (at most cap). Returns the count. */
static size_t field_headers(const lx_opts *o, const char *k, const char **lines, size_t cap)
{
	lua_State *L = o->L;
	int t = o->t;
	if (t == 0) {
		lua_pushnil(L);
		lua_newtable(L);
		return 0;
	}
	lua_getfield(L, t, k);
	int h = lua_gettop(L);
	lua_newtable(L); /* keeper */
	size_t n = 0;
	if (lua_isnil(L, h))
		return 0;
	if (!lua_istable(L, h))
		lx_opt_error(o, k, "expects a table of headers, got %s", luaL_typename(L, h));
	lua_pushnil(L);
	while (lua_next(L, h) != 0) {
		if (n == cap)
			luaL_error(L, "too many headers (at most %d)", (int)cap);
		if (lua_type(L, -2) == LUA_TNUMBER) {
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "a header line must be a string 'Name: value'");
			lua_pushvalue(L, -1);
		} else if (lua_type(L, -2) == LUA_TSTRING && (lua_type(L, -1) == LUA_TSTRING || lua_isnumber(L, -1))) {
			lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
		} else {
			luaL_error(L, "headers map names to string values");
		}
		const char *line = lua_tostring(L, -1);
		if (strchr(line, '\r') || strchr(line, '\n') || strchr(line, ':') == NULL)
			luaL_error(L, "bad header line '%s' (expected 'Name: value' on one line)", line);
		lines[n++] = line;
		lua_rawseti(L, h + 1, (lua_Integer)n);
		lua_pop(L, 1);
	}
	return n;
}

/* ---- durox.http ------------------------------------------------------------------------- */

static void response_free_box(void *p)
{
	net_http_response_free(p);
	free(p);
}

/* durox.http{url=, method=, headers=, body=, timeout_ms=, insecure=} ->
 *   {status=, body=, headers={["content-type"]=, ["retry-after"]=}} | nil, message, "IO" */
static int l_http(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	static const char *const known[] = {"url", "method", "headers", "body", "timeout_ms", "insecure", NULL};
	lx_opts o = lx_opts_at(L, 1, "http request", known, NULL);
	net_http_request rq = {0};
	rq.url = need_text(&o, "url");
	rq.method = lx_opt_text(&o, "method");
	lua_getfield(L, 1, "body");
	size_t blen = 0;
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			lx_opt_error(&o, "body", "expects a string, got %s", luaL_typename(L, -1));
		rq.body = lua_tolstring(L, -1, &blen);
		rq.body_len = blen;
	}
	lua_pop(L, 1);
	rq.timeout_ms = (long)lx_opt_duration(&o, "timeout_ms", 10000, 1, 3600000);
	rq.insecure = lx_opt_boolean(&o, "insecure", 0);
	const char *lines[64];
	rq.nheaders = field_headers(&o, "headers", lines, 64);
	rq.headers = lines;
	lx_box *b = lx_newbox(L);
	net_http_response *rs = calloc(1, sizeof *rs);
	if (rs == NULL)
		return luaL_error(L, "out of memory");
	b->p = rs;
	b->fr = response_free_box;
	if (net_http_perform(&rq, rs) != 0 || rs->transport) {
		lua_pushnil(L);
		lua_pushstring(L, rs->error);
		lua_pushstring(L, rs->timed_out ? "TIMEOUT" : "IO");
		return 3;
	}
	lua_createtable(L, 0, 3);
	lx_set_int(L, "status", rs->status);
	lua_pushlstring(L, rs->body, rs->body_len);
	lua_setfield(L, -2, "body");
	lua_createtable(L, 0, 2);
	lx_set_str(L, "content-type", rs->content_type);
	lx_set_str(L, "retry-after", rs->retry_after);
	lua_setfield(L, -2, "headers");
	lx_boxfree(b);
	return 1;
}

/* durox.hmac_sha256(key, message) -> lower-case hex */
static int l_hmac(lua_State *L)
{
	size_t kl, ml;
	const char *k = luaL_checklstring(L, 1, &kl);
	const char *m = luaL_checklstring(L, 2, &ml);
	uint8_t mac[SHA256_LEN];
	hmac_sha256(k, kl, m, ml, mac);
	char hex[2 * SHA256_LEN + 1];
	hex_encode(mac, SHA256_LEN, hex);
	lua_pushstring(L, hex);
	return 1;
}

/* ---- durox.webhook ---------------------------------------------------------------------- */

typedef struct lx_webhook {
	lua_State *L; /* the state of the current deliver call */
	int errored;
	int set;
} lx_webhook;

/* uservalue 1: the options table (copied), which keeps url, secret and header lines alive */

static int l_sleeper(lua_State *L)
{
	lua_Integer ms = lua_tointeger(L, 1);
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return 0;
}

static int wh_wait(void *ud, int64_t ms)
{
	lx_webhook *w = ud;
	lua_State *L = w->L;
	lua_pushcfunction(L, l_sleeper);
	lua_pushinteger(L, (lua_Integer)ms);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		w->errored = 1;
		return 1;
	}
	return 0;
}

/* durox.webhook{url=, secret=, headers=, timeout_ms=, max_attempts=, backoff_ms=,
 *   max_backoff_ms=, verify_tls=} -> webhook */
static int l_webhook(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	static const char *const known[] = {"url",        "secret",         "headers",    "timeout_ms", "max_attempts",
	                                    "backoff_ms", "max_backoff_ms", "verify_tls", NULL};
	lx_opts o = lx_opts_at(L, 1, "webhook option", known, NULL);
	const char *url = need_text(&o, "url");
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		luaL_error(L, "webhook url '%s' must start with http:// or https://", url);
	lx_opt_text(&o, "secret");
	lx_opt_duration(&o, "timeout_ms", 10000, 1, 3600000);
	lx_opt_duration(&o, "backoff_ms", 500, 1, 3600000);
	lx_opt_duration(&o, "max_backoff_ms", 60000, 1, 86400000);
	lx_opt_boolean(&o, "verify_tls", 1);
	lx_opt_integer(&o, "max_attempts", 8, 1, 100);
	const char *lines[64];
	field_headers(&o, "headers", lines, 64); /* validates them */
	lua_pop(L, 2);
	lx_webhook *w = lua_newuserdatauv(L, sizeof *w, 1);
	memset(w, 0, sizeof *w);
	luaL_setmetatable(L, LX_WEBHOOK);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	lua_setiuservalue(L, -2, 1);
	return 1;
}

/* The Idempotency-Key of a batch: the key of its only item, else "batch-" and the first 32
 * hex digits of SHA-256 over the items' keys (a reset item counts as "reset:<cursor>"). */
static void batch_key(lua_State *L, int items, char *out, size_t cap)
{
	lua_Integer n = luaL_len(L, items);
	sha256_ctx c;
	sha256_init(&c);
	const char *single = NULL;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, items, i);
		if (!lua_istable(L, -1))
			luaL_error(L, "item %I is not a table", i);
		lua_getfield(L, -1, "key");
		const char *k = lua_tostring(L, -1);
		if (k == NULL) {
			lua_pop(L, 1);
			lua_getfield(L, -1, "cursor");
			const char *cur = lua_tostring(L, -1);
			lua_pushfstring(L, "%s:%s", "reset", cur ? cur : "");
			lua_remove(L, -2);
			k = lua_tostring(L, -1);
		}
		sha256_update(&c, k, strlen(k));
		sha256_update(&c, "\n", 1);
		if (n == 1 && strlen(k) < cap)
			snprintf(out, cap, "%s", k), single = out;
		lua_pop(L, 2);
	}
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	if (single != NULL && strncmp(single, "reset:", 6) != 0)
		return;
	char hex[2 * SHA256_LEN + 1];
	hex_encode(d, SHA256_LEN, hex);
	snprintf(out, cap, "%s-%.32s", n == 1 ? "reset" : "batch", hex);
}

/* webhook:post(body, key) / webhook:deliver(items) -> {delivered=, attempts=, status=,
 * error=, key=, body=} | nil, message, code (the request could not be made at all) */
static int wh_send(lua_State *L, lx_webhook *w, const char *body, size_t len, const char *key)
{
	lua_getiuservalue(L, 1, 1);
	lx_opts o = {L, lua_gettop(L), "webhook option"};
	net_webhook wh = {0};
	wh.url = need_text(&o, "url");
	wh.secret = lx_opt_text(&o, "secret");
	wh.secret_len = wh.secret ? strlen(wh.secret) : 0;
	wh.timeout_ms = (long)lx_opt_duration(&o, "timeout_ms", 10000, 1, 3600000);
	wh.backoff_ms = lx_opt_duration(&o, "backoff_ms", 500, 1, 3600000);
	wh.max_backoff_ms = lx_opt_duration(&o, "max_backoff_ms", 60000, 1, 86400000);
	wh.insecure = !lx_opt_boolean(&o, "verify_tls", 1);
	wh.max_attempts = (int)lx_opt_integer(&o, "max_attempts", 8, 1, 100);
	const char *lines[64];
	wh.nheaders = field_headers(&o, "headers", lines, 64);
	wh.headers = lines;
	wh.wait = wh_wait;
	wh.wait_ud = w;
	w->L = L;
	w->errored = 0;
	luaL_checkstack(L, 8, NULL);
	net_webhook_result res;
	int rc = net_webhook_post(&wh, body, len, key, &res);
	if (w->errored)
		return lua_error(L); /* interrupted while waiting to retry */
	if (rc != 0) {
		lua_pushnil(L);
		lua_pushstring(L, res.error);
		lua_pushstring(L, "INVALID");
		return 3;
	}
	lua_createtable(L, 0, 6);
	lx_set_bool(L, "delivered", res.delivered);
	lx_set_int(L, "attempts", res.attempts);
	if (res.status > 0)
		lx_set_int(L, "status", res.status);
	if (!res.delivered)
		lx_set_str(L, "error", res.error);
	lx_set_str(L, "key", key);
	lua_pushlstring(L, body, len);
	lua_setfield(L, -2, "body");
	return 1;
}

static int wh_post(lua_State *L)
{
	lx_webhook *w = luaL_checkudata(L, 1, LX_WEBHOOK);
	size_t len;
	const char *body = luaL_checklstring(L, 2, &len);
	const char *key = luaL_checkstring(L, 3);
	lua_settop(L, 3);
	return wh_send(L, w, body, len, key);
}

void lx_push_batch_body(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	if (luaL_len(L, idx) == 0)
		luaL_error(L, "nothing to deliver (an empty batch)");
	char key[160];
	batch_key(L, idx, key, sizeof key);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, luaL_len(L, idx));
	lua_setfield(L, -2, "count");
	lua_pushstring(L, key);
	lua_setfield(L, -2, "idempotency_key");
	lua_pushvalue(L, idx);
	lua_setfield(L, -2, "items");
	lx_encode_json(L, -1, 0);
	lua_remove(L, -2);
	lua_pushstring(L, key);
}

/* durox.parse_duration(s) -> ms | nil, message ("250ms", "30s", "5m", "2h", "1d", or digits = ms) */
static int l_parse_duration(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	int64_t ms = 0;
	int digits = n > 0 && n < 16;
	for (size_t i = 0; i < n && digits; i++)
		digits = s[i] >= '0' && s[i] <= '9';
	if (digits) {
		for (size_t i = 0; i < n; i++)
			ms = ms * 10 + (s[i] - '0');
	} else if (time_parse_duration(s, n, &ms) != 0 || ms < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "invalid duration '%s' (expected ms or like 500ms, 30s, 5m, 2h, 1d)", s);
		return 2;
	}
	lua_pushinteger(L, (lua_Integer)ms);
	return 1;
}

/* durox.batch_body(items) -> body, key: what webhook:deliver(items) posts */
static int l_batch_body(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lx_push_batch_body(L, 1);
	return 2;
}

/* The body of a batch: {"count":n,"idempotency_key":"...","items":[...]} (keys sorted). */
static int wh_deliver(lua_State *L)
{
	lx_webhook *w = luaL_checkudata(L, 1, LX_WEBHOOK);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	lx_push_batch_body(L, 2); /* body at 3, key at 4 */
	size_t len;
	const char *body = lua_tolstring(L, 3, &len);
	const char *key = lua_tostring(L, 4);
	return wh_send(L, w, body, len, key);
}

static int wh_tostring(lua_State *L)
{
	luaL_checkudata(L, 1, LX_WEBHOOK);
	lua_getiuservalue(L, 1, 1);
	lua_getfield(L, -1, "url");
	lua_pushfstring(L, "durox.Webhook (%s)", lua_tostring(L, -1));
	return 1;
}

/* ---- durox.http_server ------------------------------------------------------------------ */

typedef struct lx_server {
	net_server *s;
} lx_server;

typedef struct lx_request {
	net_server_request rq;
} lx_request;

static int srv_close(lua_State *L)
{
	lx_server *x = luaL_checkudata(L, 1, LX_SERVER);
	net_server_close(x->s);
	x->s = NULL;
	return 0;
}

/* durox.http_server{host=, port=} -> server | nil, message, "IO" */
static int l_http_server(lua_State *L)
{
	lua_settop(L, 1);
	const char *host = NULL;
	lua_Integer port = 0;
	static const char *const known[] = {"host", "port", NULL};
	lx_opts o = lx_opts_at(L, 1, "http_server option", known, NULL);
	host = lx_opt_text(&o, "host");
	port = lx_opt_integer(&o, "port", 0, 0, 65535);
	lx_server *x = lua_newuserdatauv(L, sizeof *x, 0);
	x->s = NULL;
	luaL_setmetatable(L, LX_SERVER);
	char err[256];
	if (net_server_open(host, (int)port, &x->s, err, sizeof err) != 0) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushliteral(L, "IO");
		return 3;
	}
	return 1;
}

static lx_server *check_open_server(lua_State *L)
{
	lx_server *x = luaL_checkudata(L, 1, LX_SERVER);
	if (x->s == NULL)
		luaL_error(L, "attempt to use a closed server");
	return x;
}

static int srv_port(lua_State *L)
{
	lua_pushinteger(L, net_server_port(check_open_server(L)->s));
	return 1;
}

static int req_gc(lua_State *L)
{
	lx_request *r = luaL_checkudata(L, 1, LX_REQUEST);
	if (r->rq.fd >= 0)
		net_server_respond(&r->rq, 500, NULL, "", 0, 100);
	return 0;
}

/* server:accept([timeout_ms [, read_timeout_ms]]) -> request | nil (nothing in time) */
static int srv_accept(lua_State *L)
{
	lx_server *x = check_open_server(L);
	int64_t t = lx_check_duration(L, 2, "timeout", 1000, 0, 86400000);
	int64_t rt = lx_check_duration(L, 3, "read timeout", 5000, 1, 3600000);
	lx_request *r = lua_newuserdatauv(L, sizeof *r, 0);
	memset(r, 0, sizeof *r);
	r->rq.fd = -1;
	luaL_setmetatable(L, LX_REQUEST);
	char err[256];
	int got = net_server_accept(x->s, t, rt, &r->rq, err, sizeof err);
	if (got < 0)
		return luaL_error(L, "%s", err);
	if (got == 0)
		return 0;
	return 1;
}

/* request.method / .path / .peer, request:respond(status, body [, content_type]) */
static int req_respond(lua_State *L)
{
	lx_request *r = luaL_checkudata(L, 1, LX_REQUEST);
	lua_Integer status = luaL_checkinteger(L, 2);
	size_t len;
	const char *body = luaL_optlstring(L, 3, "", &len);
	const char *ct = luaL_optstring(L, 4, NULL);
	luaL_argcheck(L, status >= 100 && status <= 599, 2, "HTTP status out of range");
	if (r->rq.fd < 0)
		return luaL_error(L, "the request was answered already");
	net_server_respond(&r->rq, (int)status, ct, body, len, 10000);
	return 0;
}

static int req_index(lua_State *L)
{
	lx_request *r = luaL_checkudata(L, 1, LX_REQUEST);
	const char *k = luaL_checkstring(L, 2);
	if (strcmp(k, "method") == 0)
		lua_pushstring(L, r->rq.method);
	else if (strcmp(k, "path") == 0)
		lua_pushstring(L, r->rq.path);
	else if (strcmp(k, "peer") == 0)
		lua_pushstring(L, r->rq.peer);
	else if (strcmp(k, "respond") == 0)
		lua_pushcfunction(L, req_respond);
	else
		lua_pushnil(L);
	return 1;
}

static const luaL_Reg webhook_methods[] = {{"post", wh_post}, {"deliver", wh_deliver}, {NULL, NULL}};
static const luaL_Reg server_methods[] = {
        {"accept", srv_accept}, {"port", srv_port}, {"close", srv_close}, {NULL, NULL}};
static const luaL_Reg net_functions[] = {
        {"http", l_http},
        {"webhook", l_webhook},
        {"hmac_sha256", l_hmac},
        {"batch_body", l_batch_body},
        {"parse_duration", l_parse_duration},
        {"http_server", l_http_server},
        {NULL, NULL},
};

void lx_open_net(lua_State *L)
{
	luaL_setfuncs(L, net_functions, 0);
	if (luaL_newmetatable(L, LX_WEBHOOK)) {
		luaL_newlib(L, webhook_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, wh_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, LX_SERVER)) {
		luaL_newlib(L, server_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, srv_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, srv_close);
		lua_setfield(L, -2, "__close");
	}
	lua_pop(L, 1);
	if (luaL_newmetatable(L, LX_REQUEST)) {
		lua_pushcfunction(L, req_index);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, req_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
}
