/*
 * binding_stream.c - the store handle's real-time methods: read_changes (the raw change
 * feed) and stream_instance_events (an iterator object, "durox.Stream"). Misuse raises;
 * expected failures at the start (streaming disabled, a bad cursor, the store failing) return
 * nil, message, code; a failure while iterating raises. Between polls a stream sleeps inside
 * a protected call, so Ctrl-C (the interpreter's hook) stops it cleanly. Relies on the
 * engine (durox.h) and lx.h; added to the Store methods by lx_open_stream (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/lx.h"

/* ---- read_changes --------------------------------------------------------------------- */

static void changes_free_box(void *p) { durox_changes_free(p); }

/* "start" (0) or "now" (1) */
static int parse_from(const char *s) { return strcmp(s, "start") == 0 ? 0 : strcmp(s, "now") == 0 ? 1 : -1; }

static void push_reset(lua_State *L, int reset, const char *reason)
{
	lua_createtable(L, 0, 2);
	lx_set_str(L, "kind", durox_reset_name(reset));
	lx_set_str(L, "reason", reason);
}

/* handle:read_changes{cursor=, from="start"|"now", limit=, payloads=, verify_ms=}
 *   -> {changes = {...}, cursor=, more=, idle=, reset = nil | {kind=, reason=}} | nil, msg, code */
static int l_read_changes(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const known[] = {"cursor", "from", "limit", "payloads", "verify_ms", NULL};
	lx_opts o = lx_opts_at(L, 2, "read_changes option", known, NULL);
	durox_changes_request req = {0};
	req.cursor = lx_opt_text(&o, "cursor");
	req.from_now = lx_opt_enum(&o, "from", 0, parse_from, "start or now");
	if (lx_opt_has(&o, "from") && req.cursor != NULL)
		lx_opt_error(&o, "from", "cannot be given with 'cursor'");
	req.limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 1, 100000);
	req.include_payloads = lx_opt_boolean(&o, "payloads", 0);
	req.verify_ms = (int64_t)lx_opt_integer(&o, "verify_ms", 0, -1, 86400000);
	lx_box *b = lx_newbox(L);
	durox_changes *c = NULL;
	int rc = durox_read_changes(dx, &req, &c);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = c;
	b->fr = changes_free_box;
	lua_createtable(L, 0, 6);
	lua_createtable(L, (int)c->count, 0);
	for (size_t i = 0; i < c->count; i++) {
		const durox_change *ch = &c->changes[i];
		lua_createtable(L, 0, 8);
		lx_set_str(L, "instance_id", ch->instance_id);
		lx_set_int(L, "execution_id", (int64_t)ch->execution_id);
		lx_set_int(L, "event_id", (int64_t)ch->event_id);
		lx_set_str(L, "event_type", ch->event_type);
		lx_set_int(L, "timestamp", ch->timestamp);
		if (ch->created_at != DUROX_NO_TIME)
			lx_set_int(L, "created_at", ch->created_at);
		lx_set_str(L, "data", ch->data);
		lx_set_str(L, "cursor", ch->cursor);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "changes");
	lx_set_str(L, "cursor", c->cursor);
	lx_set_bool(L, "more", c->more);
	lx_set_bool(L, "idle", c->idle);
	lx_set_bool(L, "verified", c->verified);
	if (c->reset != DUROX_RESET_NONE) {
		push_reset(L, c->reset, c->reset_reason);
		lua_setfield(L, -2, "reset");
	}
	lx_boxfree(b);
	return 1;
}

/* ---- stream objects ------------------------------------------------------------------ */

#define LX_STREAM "durox.Stream"

typedef struct lx_stream {
	durox_event_stream *s;   /* an event stream, or */
	durox_watch *w;          /* a watch, or */
	durox_metrics_stream *m; /* a metric stream */
	lua_State *L;            /* the state running the current call */
	int errored;             /* a callback raised: its error value is at the top of L's stack */
	lx_pred pred;            /* the engine keeps &pred */
	int done;
} lx_stream;

/* uservalues: 1 = store handle, 2 = filter box, 3 = predicate or nil */

/* Sleeps up to ms (returns early on a signal, so the interrupt hook fires on return). */
static int l_sleeper(lua_State *L)
{
	lua_Integer ms = lua_tointeger(L, 1);
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	return 0;
}

/* The engine's wait function: sleeps in a protected call. */
static int stream_wait_cb(void *ud, int64_t ms)
{
	lx_stream *x = ud;
	lua_State *L = x->L;
	lua_pushcfunction(L, l_sleeper);
	lua_pushinteger(L, (lua_Integer)ms);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
		x->errored = 1;
		return 1;
	}
	return 0;
}

static void stream_free(lx_stream *x)
{
	durox_event_stream_free(x->s);
	durox_watch_free(x->w);
	durox_metrics_stream_free(x->m);
	x->s = NULL;
	x->w = NULL;
	x->m = NULL;
	x->done = 1;
}

static int stream_close(lua_State *L)
{
	stream_free(luaL_checkudata(L, 1, LX_STREAM));
	return 0;
}

static const char *status_text(int st) { return st >= 0 ? durox_status_name(st) : NULL; }

static void push_change(lua_State *L, const durox_status_change *c)
{
	lua_createtable(L, 0, 14);
	if (c->item == DUROX_ITEM_RESET) {
		lx_set_str(L, "kind", "reset");
		lx_set_str(L, "reset", durox_reset_name(c->reset));
		lx_set_str(L, "reason", c->reset_reason);
	} else if (c->item == DUROX_ITEM_HEARTBEAT) {
		lx_set_str(L, "kind", "heartbeat");
	} else {
		lx_set_str(L, "kind", "change");
		lx_set_str(L, "instance_id", c->instance_id);
		lx_set_bool(L, "initial", c->initial);
		if (!c->initial)
			lx_set_str(L, "old_status", status_text(c->old_status));
		lx_set_str(L, "new_status", status_text(c->new_status));
		if (c->new_status == DUROX_STATUS_FAILED)
			lx_set_str(L, "failure_kind", durox_failure_kind_name(c->failure_kind));
		if (c->execution_id > 0)
			lx_set_int(L, "execution_id", (int64_t)c->execution_id);
		lx_set_bool(L, "custom_status_changed", c->custom_status_changed);
		lx_set_str(L, "custom_status", c->custom_status);
		lx_set_str(L, "old_custom_status", c->old_custom_status);
		lx_set_str(L, "output", c->output);
		lx_set_str(L, "error", c->error);
		lx_set_str(L, "key", c->key);
	}
	lx_set_int(L, "at", c->at);
	lx_set_str(L, "cursor", c->cursor);
}

static void push_details(lua_State *L, const char *details)
{
	arena a;
	arena_init(&a);
	json *v = details != NULL ? json_parse(&a, details, strlen(details), NULL, 0) : NULL;
	if (v != NULL)
		lx_push_json(L, v); /* only non-raising pushes, so the arena cannot leak */
	else
		lua_createtable(L, 0, 0);
	arena_release(&a);
}

static void push_item(lua_State *L, const durox_instance_event *e)
{
	lua_createtable(L, 0, 12);
	if (e->item == DUROX_ITEM_RESET) {
		lx_set_str(L, "kind", "reset");
		lx_set_str(L, "reset", durox_reset_name(e->reset));
		lx_set_str(L, "reason", e->reset_reason);
	} else if (e->item == DUROX_ITEM_HEARTBEAT) {
		lx_set_str(L, "kind", "heartbeat");
	} else {
		lx_set_str(L, "kind", "event");
		lx_set_str(L, "instance_id", e->instance_id);
		lx_set_int(L, "execution_id", (int64_t)e->execution_id);
		lx_set_int(L, "event_id", (int64_t)e->event_id);
		lx_set_str(L, "event_type", durox_instance_event_type_name(e->event_type));
		lx_set_int(L, "timestamp", e->timestamp);
		lx_set_str(L, "orchestration_name", e->orchestration_name);
		lx_set_str(L, "key", e->key);
		push_details(L, e->details);
		lua_setfield(L, -2, "details");
	}
	lx_set_int(L, "at", e->at);
	lx_set_str(L, "cursor", e->cursor);
}

/* Runs before an engine call on x: points the callbacks at the calling state. */
static durox *stream_prepare(lua_State *L, lx_stream *x)
{
	lua_getiuservalue(L, 1, 1);
	lx_store *h = luaL_checkudata(L, -1, LX_STORE);
	lua_pop(L, 1);
	if (h->dx == NULL)
		luaL_error(L, "store was closed during the stream");
	lua_getiuservalue(L, 1, 3);
	x->pred = (lx_pred){L, lua_isfunction(L, -1) ? lua_absindex(L, -1) : 0, 0, lx_budget(h->dx)};
	x->L = L;
	x->errored = 0;
	luaL_checkstack(L, 10, NULL);
	return h->dx;
}

/* After an engine call: a callback's error is re-raised (the stream is closed first). */
static void stream_rethrow(lua_State *L, lx_stream *x)
{
	if (x->errored || x->pred.errored) {
		stream_free(x);
		lua_error(L);
	}
}

/* stream() / stream:next() -> the next item, or nil at the end */
static int stream_next(lua_State *L)
{
	lx_stream *x = luaL_checkudata(L, 1, LX_STREAM);
	if (x->done || (x->s == NULL && x->w == NULL && x->m == NULL))
		return 0;
	durox *dx = stream_prepare(L, x);
	const durox_instance_event *e = NULL;
	const durox_status_change *c = NULL;
	durox_runtime_metrics rm;
	int recounted = 0;
	int rc = x->s != NULL   ? durox_event_stream_next(x->s, &e)
	         : x->w != NULL ? durox_watch_next(x->w, &c)
	                        : durox_metrics_stream_next(x->m, &rm, &recounted);
	stream_rethrow(L, x);
	if (rc < 0) {
		x->done = 1;
		return luaL_error(L, "%s", durox_errmsg(dx));
	}
	if (rc == 0) {
		x->done = 1; /* kept until closed, so that stream:cursor() still answers */
		return 0;
	}
	if (rc == 2) { /* no_wait: nothing now */
		lua_pushboolean(L, 0);
		return 1;
	}
	if (e != NULL) {
		push_item(L, e);
	} else if (c != NULL) {
		push_change(L, c);
	} else {
		lx_push_runtime_metrics(L, &rm);
		lx_set_bool(L, "recounted", recounted);
	}
	return 1;
}

/* stream:cursor() -> where to resume once every item handed out so far is handled */
static int stream_cursor(lua_State *L)
{
	lx_stream *x = luaL_checkudata(L, 1, LX_STREAM);
	if (x->s == NULL && x->w == NULL)
		return luaL_error(L, x->m != NULL ? "a metric stream has no cursor" : "attempt to use a closed stream");
	const char *c = x->s != NULL ? durox_event_stream_cursor(x->s) : durox_watch_cursor(x->w);
	if (c == NULL)
		return luaL_error(L, "out of memory");
	lua_pushstring(L, c);
	return 1;
}

/* stream:pending() -> how many items of the current batch are not handed out yet (0: the
 * batch is done, a good moment to save stream:cursor()) */
static int stream_pending(lua_State *L)
{
	lx_stream *x = luaL_checkudata(L, 1, LX_STREAM);
	lua_pushinteger(L, x->s != NULL   ? (lua_Integer)durox_event_stream_pending(x->s)
	                   : x->w != NULL ? (lua_Integer)durox_watch_pending(x->w)
	                                  : 0);
	return 1;
}

static int stream_tostring(lua_State *L)
{
	lx_stream *x = luaL_checkudata(L, 1, LX_STREAM);
	lua_pushfstring(L, "durox.Stream (%s)", x->s != NULL || x->w != NULL || x->m != NULL ? "open" : "closed");
	return 1;
}

static int parse_event_type(const char *s) { return durox_instance_event_type_parse(s); }

#define EVENT_TYPES                                                                                                    \
	"Started, Completed, Failed, ContinuedAsNew, Cancelled, ActivityCompleted, ActivityFailed, TimerFired or "     \
	"EventReceived"

/* handle:stream_instance_events{filter=, predicate=, event_types=, cursor=, from=, follow=,
 *   poll_interval_ms=, timeout_ms=, heartbeat_ms=, batch_size=, payloads=, verify_ms=}
 *   -> stream (callable iterator, to-be-closed), nil, nil, stream | nil, msg, code */
static int l_stream_events(lua_State *L)
{
	lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const known[] = {
	        "filter",     "predicate",    "event_types", "cursor",   "from",      "follow",  "poll_interval_ms",
	        "timeout_ms", "heartbeat_ms", "batch_size",  "payloads", "verify_ms", "no_wait", NULL};
	lx_opts o = lx_opts_at(L, 2, "stream option", known, NULL);
	durox_event_stream_request req = {0};
	if (o.t == 0) {
		lua_newtable(L);
		lua_replace(L, 2);
		o.t = 2;
	}
	lua_getfield(L, 2, "filter"); /* 3 */
	int pred_idx = 0;
	durox_filter *f = lx_filter_arg(L, 3, &pred_idx); /* pushes the filter box at 4 */
	int p = lx_opt_function(&o, "predicate");         /* 5 when given */
	if (p) {
		if (pred_idx)
			lx_opt_error(&o, "predicate", "is given twice (also in the filter)");
		pred_idx = p;
	}
	req.filter = f;
	int types[DUROX_IEV__COUNT];
	int nt = lx_opt_enum_list(&o, "event_types", parse_event_type, EVENT_TYPES, types, DUROX_IEV__COUNT);
	if (lx_opt_has(&o, "event_types") && nt == 0)
		lx_opt_error(&o, "event_types", "is empty");
	for (int i = 0; i < nt; i++)
		req.event_types |= 1u << types[i];
	req.cursor = lx_opt_text(&o, "cursor");
	req.from_now = lx_opt_enum(&o, "from", 0, parse_from, "start or now");
	if (lx_opt_has(&o, "from") && req.cursor != NULL)
		lx_opt_error(&o, "from", "cannot be given with 'cursor'");
	req.follow = lx_opt_boolean(&o, "follow", 0);
	req.poll_interval_ms = (uint32_t)lx_opt_duration(&o, "poll_interval_ms", 0, 0, 3600000);
	req.timeout_ms = lx_opt_duration(&o, "timeout_ms", 0, 0, INT64_MAX / 4);
	req.heartbeat_ms = (uint32_t)lx_opt_duration(&o, "heartbeat_ms", 0, 0, 86400000);
	req.batch_size = (uint32_t)lx_opt_integer(&o, "batch_size", 0, 1, 100000);
	req.no_payloads = !lx_opt_boolean(&o, "payloads", 1);
	req.verify_ms = (int64_t)lx_opt_integer(&o, "verify_ms", 0, -1, 86400000);
	req.no_wait = lx_opt_boolean(&o, "no_wait", 0);
	if (req.no_wait && !req.follow)
		lx_opt_error(&o, "no_wait", "needs follow = true");
	lx_stream *x = lua_newuserdatauv(L, sizeof *x, 3);
	memset(x, 0, sizeof *x);
	luaL_setmetatable(L, LX_STREAM);
	int xi = lua_gettop(L);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, xi, 1);
	lua_pushvalue(L, 4);
	lua_setiuservalue(L, xi, 2);
	if (pred_idx) {
		lua_pushvalue(L, pred_idx);
		lua_setiuservalue(L, xi, 3);
		req.predicate = lx_predicate;
		req.predicate_ud = &x->pred; /* userdata memory never moves */
	}
	req.wait = stream_wait_cb;
	req.wait_ud = x;
	durox *dx = lx_checkstore(L, 1);
	int rc = durox_event_stream_open(dx, &req, &x->s);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushvalue(L, xi);
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushvalue(L, xi);
	return 4;
}

/* ---- durable state: dead letters, cursors, rule runs ------------------------------------- */

static void dl_free_box(void *p) { durox_dead_letter_list_free(p); }
static void runs_free_box(void *p) { durox_rule_run_list_free(p); }

static void push_time_opt(lua_State *L, const char *k, int64_t v)
{
	if (v != DUROX_NO_TIME)
		lx_set_int(L, k, v);
}

/* handle:dead_letter{source=, url=, items= | payload=, key=, attempts=, status=, error=} -> id
 * A batch of items is encoded as the webhook encodes it (its key computed alike) unless
 * payload and key are given. */
static int l_dead_letter(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	static const char *const known[] = {"source",   "url",    "items", "payload", "key",
	                                    "attempts", "status", "error", NULL};
	lx_opts o = lx_opts_at(L, 2, "dead letter", known, NULL);
	durox_dead_letter d = {0};
	d.source = lx_opt_text(&o, "source");
	d.url = lx_opt_text(&o, "url");
	d.payload = lx_opt_text(&o, "payload");
	d.key = lx_opt_text(&o, "key");
	d.last_error = lx_opt_text(&o, "error");
	d.attempts = (int)lx_opt_integer(&o, "attempts", 0, 0, 1000000);
	d.last_status = (long)lx_opt_integer(&o, "status", 0, 0, 999);
	if (d.source == NULL || d.url == NULL)
		luaL_error(L, "a dead letter needs 'source' and 'url'");
	lua_getfield(L, 2, "items"); /* 3 */
	if (!lua_isnil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		if (d.payload != NULL)
			luaL_error(L, "give either 'items' or 'payload'");
		/* the same body and key as webhook:deliver: {count, idempotency_key, items} */
		lx_push_batch_body(L, 3); /* body, key */
		d.payload = lua_tostring(L, -2);
		if (d.key == NULL)
			d.key = lua_tostring(L, -1);
		d.items = (uint32_t)luaL_len(L, 3);
	} else {
		d.items = 1;
	}
	if (d.payload == NULL || d.key == NULL)
		luaL_error(L, "a dead letter needs 'items', or 'payload' and 'key'");
	int64_t id = 0;
	int rc = durox_dead_letter_add(dx, &d, &id);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushinteger(L, id);
	return 1;
}

/* handle:list_dead_letters{source=, after=, limit=} -> { {id, created_at, ...} } */
static int l_list_dead_letters(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	const char *source = NULL;
	int64_t after = 0;
	uint32_t limit = 0;
	static const char *const known[] = {"source", "after", "limit", NULL};
	lx_opts o = lx_opts_at(L, 2, "list_dead_letters option", known, NULL);
	source = lx_opt_text(&o, "source");
	after = (int64_t)lx_opt_integer(&o, "after", 0, 0, INT64_MAX);
	limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 1, 100000);
	lx_box *b = lx_newbox(L);
	durox_dead_letter_list *l = NULL;
	int rc = durox_list_dead_letters(dx, source, after, limit, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = dl_free_box;
	lua_createtable(L, (int)l->count, 0);
	for (size_t i = 0; i < l->count; i++) {
		const durox_dead_letter *d = &l->items[i];
		lua_createtable(L, 0, 10);
		lx_set_int(L, "id", d->id);
		lx_set_int(L, "created_at", d->created_at);
		lx_set_str(L, "source", d->source);
		lx_set_str(L, "url", d->url);
		lx_set_str(L, "key", d->key);
		lx_set_str(L, "payload", d->payload);
		lx_set_int(L, "items", d->items);
		lx_set_int(L, "attempts", d->attempts);
		if (d->last_status > 0)
			lx_set_int(L, "status", d->last_status);
		lx_set_str(L, "error", d->last_error);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lx_boxfree(b);
	return 1;
}

/* handle:delete_dead_letter(id) -> true | nil, msg, code */
static int l_delete_dead_letter(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_Integer id = luaL_checkinteger(L, 2);
	int rc = durox_dead_letter_delete(dx, (int64_t)id);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:get_cursor(name) -> cursor | nil (none saved) | nil, msg, code */
static int l_get_cursor(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *name = lx_checktext(L, 2);
	lx_box *b = lx_newbox(L);
	char *c = NULL;
	int rc = durox_cursor_get(dx, name, &c);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = c;
	b->fr = durox_free;
	if (c == NULL)
		lua_pushnil(L);
	else
		lua_pushstring(L, c);
	lx_boxfree(b);
	return 1;
}

static void push_run(lua_State *L, const durox_rule_run *r)
{
	lua_createtable(L, 0, 9);
	lx_set_str(L, "rule", r->rule);
	lx_set_str(L, "key", r->key);
	lx_set_str(L, "state", r->state);
	lx_set_int(L, "attempts", r->attempts);
	lx_set_str(L, "error", r->error);
	lx_set_str(L, "instance_id", r->instance_id);
	lx_set_str(L, "event_type", r->event_type);
	push_time_opt(L, "started_at", r->started_at);
	push_time_opt(L, "finished_at", r->finished_at);
}

/* handle:get_rule_run(rule, key) -> run | nil */
static int l_get_rule_run(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *rule = lx_checktext(L, 2);
	const char *key = lx_checktext(L, 3);
	lx_box *b = lx_newbox(L);
	durox_rule_run_list *l = NULL;
	int rc = durox_rule_run_get(dx, rule, key, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = runs_free_box;
	if (l->count == 0)
		lua_pushnil(L);
	else
		push_run(L, &l->items[0]);
	lx_boxfree(b);
	return 1;
}

static int parse_run_state(const char *s)
{
	static const char *const states[] = {"running", "done", "failed", "skipped", "interrupted"};
	for (int i = 0; i < 5; i++)
		if (strcmp(s, states[i]) == 0)
			return i;
	return -1;
}

/* handle:record_rule_run(run | nil [, cursor_name, cursor]) -> true | nil, msg, code
 * run = {rule, key, state, attempts, error, instance_id, event_type, started_at, finished_at} */
static int l_record_rule_run(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 4);
	durox_rule_run r = {0}, *rp = NULL;
	if (!lua_isnil(L, 2)) {
		static const char *const known[] = {"rule",        "key",        "state",      "attempts",    "error",
		                                    "instance_id", "event_type", "started_at", "finished_at", NULL};
		lx_opts o = lx_opts_at(L, 2, "rule run", known, NULL);
		r.rule = lx_opt_text(&o, "rule");
		r.key = lx_opt_text(&o, "key");
		r.error = lx_opt_text(&o, "error");
		r.instance_id = lx_opt_text(&o, "instance_id");
		r.event_type = lx_opt_text(&o, "event_type");
		r.attempts = (int)lx_opt_integer(&o, "attempts", 0, 0, 1000000);
		r.started_at = lx_opt_time(&o, "started_at");
		r.finished_at = lx_opt_time(&o, "finished_at");
		static const char *const states[] = {"running", "done", "failed", "skipped", "interrupted"};
		int st = lx_opt_enum(&o, "state", -1, parse_run_state, "running, done, failed, skipped or interrupted");
		if (st < 0)
			lx_opt_error(&o, "state", "is required");
		r.state = states[st];
		rp = &r;
	}
	const char *cname = lua_isnil(L, 3) ? NULL : lx_checktext(L, 3);
	const char *cursor = lua_isnil(L, 4) ? NULL : lx_checktext(L, 4);
	int rc = durox_rule_run_put(dx, rp, cname, cursor);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushboolean(L, 1);
	return 1;
}

/* handle:list_rule_runs{rule=, state=, since=, limit=} -> { runs, newest first } */
static int l_list_rule_runs(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	const char *rule = NULL, *state = NULL;
	int64_t since = DUROX_NO_TIME;
	uint32_t limit = 0;
	static const char *const known[] = {"rule", "state", "since", "limit", NULL};
	lx_opts o = lx_opts_at(L, 2, "list_rule_runs option", known, NULL);
	rule = lx_opt_text(&o, "rule");
	state = lx_opt_text(&o, "state");
	since = lx_opt_time(&o, "since");
	limit = (uint32_t)lx_opt_integer(&o, "limit", 0, 1, 100000);
	lx_box *b = lx_newbox(L);
	durox_rule_run_list *l = NULL;
	int rc = durox_list_rule_runs(dx, rule, state, since, limit, &l);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	b->p = l;
	b->fr = runs_free_box;
	lua_createtable(L, (int)l->count, 0);
	for (size_t i = 0; i < l->count; i++) {
		push_run(L, &l->items[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lx_boxfree(b);
	return 1;
}

/* handle:count_rule_runs(rule, since) -> n (runs that started at or after since, skipped ones
 * not counted) */
static int l_count_rule_runs(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	const char *rule = lx_checktext(L, 2);
	lua_settop(L, 3);
	lua_createtable(L, 0, 1);
	lua_pushvalue(L, 3);
	lua_setfield(L, -2, "since");
	lx_opts o = {L, 4, "count_rule_runs argument"};
	int64_t since = lx_opt_time(&o, "since");
	uint64_t n = 0;
	int rc = durox_rule_run_count(dx, rule, since == DUROX_NO_TIME ? 0 : since, &n);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

/* handle:watch_instances{instance_ids=, cursor=, timeout_ms=, poll_interval_ms=, heartbeat_ms=,
 *   verify_ms=} -> stream of InstanceStatusChange items | nil, msg, code */
static int l_watch(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const known[] = {"instance_ids", "cursor",    "timeout_ms", "poll_interval_ms",
	                                    "heartbeat_ms", "verify_ms", NULL};
	lx_opts o = lx_opts_at(L, 2, "watch option", known, NULL);
	if (!lx_opt_has(&o, "instance_ids"))
		luaL_error(L, "watch option field 'instance_ids' is required");
	const char *ids[1001];
	/* the strings stay anchored in the request table, which stays on the stack below */
	int n = lx_opt_text_list(&o, "instance_ids", ids, 1001);
	if (n == 0)
		lx_opt_error(&o, "instance_ids", "is empty");
	durox_watch_request req = {0};
	req.instance_ids = ids;
	req.n = (size_t)n;
	req.cursor = lx_opt_text(&o, "cursor");
	req.timeout_ms = lx_opt_duration(&o, "timeout_ms", 0, 0, INT64_MAX / 4);
	req.poll_interval_ms = (uint32_t)lx_opt_duration(&o, "poll_interval_ms", 0, 0, 3600000);
	req.heartbeat_ms = (uint32_t)lx_opt_duration(&o, "heartbeat_ms", 0, 0, 86400000);
	req.verify_ms = (int64_t)lx_opt_integer(&o, "verify_ms", 0, -1, 86400000);
	lx_stream *x = lua_newuserdatauv(L, sizeof *x, 3);
	memset(x, 0, sizeof *x);
	luaL_setmetatable(L, LX_STREAM);
	int xi = lua_gettop(L);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, xi, 1);
	req.wait = stream_wait_cb;
	req.wait_ud = x;
	x->L = L;
	int rc = durox_watch_open(dx, &req, &x->w);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushvalue(L, xi);
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushvalue(L, xi);
	return 4;
}

/* handle:stream_runtime_metrics{interval_ms=, count=, recount_ms=, cheap_recounts=} -> stream of RuntimeMetrics
 * (each with recounted = true when the tick recounted everything) | nil, msg, code */
static int l_stream_metrics(lua_State *L)
{
	durox *dx = lx_checkstore(L, 1);
	lua_settop(L, 2);
	static const char *const known[] = {"interval_ms", "count", "recount_ms", "cheap_recounts", NULL};
	lx_opts o = lx_opts_at(L, 2, "metric stream option", known, NULL);
	durox_metrics_stream_request req = {0};
	req.interval_ms = (uint32_t)lx_opt_duration(&o, "interval_ms", 1000, 10, 86400000);
	req.count = (uint64_t)lx_opt_integer(&o, "count", 0, 0, INT64_MAX);
	req.recount_ms = (uint32_t)lx_opt_duration(&o, "recount_ms", 60000, 1000, 86400000);
	req.no_cheap_recounts = !lx_opt_boolean(&o, "cheap_recounts", 1);
	lx_stream *x = lua_newuserdatauv(L, sizeof *x, 3);
	memset(x, 0, sizeof *x);
	luaL_setmetatable(L, LX_STREAM);
	int xi = lua_gettop(L);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, xi, 1);
	req.wait = stream_wait_cb;
	req.wait_ud = x;
	x->L = L;
	int rc = durox_metrics_stream_open(dx, &req, &x->m);
	if (rc != DUROX_OK)
		return lx_fail(L, dx, rc);
	lua_pushvalue(L, xi);
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushvalue(L, xi);
	return 4;
}

static const luaL_Reg stream_object_methods[] = {
        {"next", stream_next}, {"cursor", stream_cursor}, {"pending", stream_pending}, {"close", stream_close},
        {NULL, NULL},
};

static const luaL_Reg stream_methods[] = {
        {"read_changes", l_read_changes},
        {"stream_instance_events", l_stream_events},
        {"watch_instances", l_watch},
        {"stream_runtime_metrics", l_stream_metrics},
        {"dead_letter", l_dead_letter},
        {"list_dead_letters", l_list_dead_letters},
        {"delete_dead_letter", l_delete_dead_letter},
        {"get_cursor", l_get_cursor},
        {"get_rule_run", l_get_rule_run},
        {"record_rule_run", l_record_rule_run},
        {"list_rule_runs", l_list_rule_runs},
        {"count_rule_runs", l_count_rule_runs},
        {NULL, NULL},
};

void lx_open_stream(lua_State *L)
{
	luaL_setfuncs(L, stream_methods, 0);
	if (luaL_newmetatable(L, LX_STREAM)) {
		luaL_newlib(L, stream_object_methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, stream_next);
		lua_setfield(L, -2, "__call");
		lua_pushcfunction(L, stream_close);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, stream_close);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, stream_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
}
