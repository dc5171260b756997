/*
 * feed.c - cursor tokens over the provider's change feed (feed.h) and the raw change feed of
 * the public API, durox_read_changes: history rows committed after a cursor. The handle keeps
 * one provider feed for it, so a caller that polls with the cursor it was last given gets the
 * provider's gate (an idle call reads nothing). Relies on store/provider_feed.h; used by the
 * Lua binding (dx:read_changes) and by stream.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/feed.h"
#include "engine/token.h"
#include "util/codec.h"
#include "util/hmap.h"

#define TOKEN_VERSION 1

const char *durox_reset_name(int reset)
{
	switch (reset) {
	case DUROX_RESET_NONE: return "";
	case DUROX_RESET_LOST: return "lost";
	case DUROX_RESET_DELETED: return "deleted";
	default: return NULL;
	}
}

static uint64_t store_fp(durox *dx)
{
	const char *id = dx->st->identity != NULL ? dx->st->identity : "";
	uint64_t h = fnv1a64(FNV1A64_INIT, dx->st->info.provider, strlen(dx->st->info.provider));
	h = fnv1a64(h, ":", 1);
	return fnv1a64(h, id, strlen(id));
}

static const char *kind_name(char kind)
{
	switch (kind) {
	case EFEED_CHANGES: return "change-feed";
	case EFEED_EVENTS: return "event-stream";
	case EFEED_WATCH: return "watch";
	default: return "stream";
	}
}

int efeed_open(durox *dx, efeed *e, char kind, uint64_t binding, const char *cursor, int at_end)
{
	memset(e, 0, sizeof *e);
	buf_init(&e->extra);
	e->dx = dx;
	e->kind = kind;
	e->binding = binding;
	if (!dx->cfg.enable_streaming)
		return dx_fail(dx, DUROX_EDENIED,
		               "streaming is disabled by the configuration (enable_streaming = false)");
	const store_feed_vtable *fv = dx->st->fvt;
	if (fv == NULL)
		return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s store has no change feed", dx->st->info.provider);
	e->fv = fv;
	int rc = fv->open(dx->st, &e->f);
	if (rc != DUROX_OK)
		return dx_store_fail(dx, rc);
	if (cursor == NULL) {
		rc = fv->seek(e->f, at_end);
		if (rc != DUROX_OK) {
			rc = dx_store_fail(dx, rc);
			efeed_close(e);
		}
		return rc;
	}
	buf raw;
	buf_init(&raw);
	rc = DUROX_EINVALID;
	if (token_open(cursor, &raw) != 0) {
		dx_fail(dx, rc, "malformed cursor");
		goto done;
	}
	token_reader r;
	token_reader_init(&r, &raw);
	int k = token_get_u8(&r), v = token_get_u8(&r);
	if (k != kind || v != TOKEN_VERSION) {
		if (k == EFEED_CHANGES || k == EFEED_EVENTS || k == EFEED_WATCH)
			dx_fail(dx, rc, "cursor is a %s cursor, not a %s cursor", kind_name((char)k), kind_name(kind));
		else
			dx_fail(dx, rc, "malformed cursor (not a %s cursor)", kind_name(kind));
		goto done;
	}
	uint64_t sfp = token_get_u64(&r), bfp = token_get_u64(&r);
	size_t plen = 0, xlen = 0;
	const char *pos = token_get_str(&r, &plen);
	const char *extra = token_get_str(&r, &xlen);
	if (!token_reader_done(&r)) {
		dx_fail(dx, rc, "malformed cursor (truncated)");
		goto done;
	}
	if (sfp != store_fp(dx)) {
		dx_fail(dx, rc, "cursor was issued for another store, not %s; start again without it",
		        dx->st->identity ? dx->st->identity : dx->st->info.location);
		goto done;
	}
	if (bfp != binding) {
		dx_fail(dx, rc, "cursor was issued for a different %s; start again without it",
		        kind == EFEED_WATCH ? "set of instances" : "filter or set of event types");
		goto done;
	}
	if ((rc = fv->restore(e->f, pos, plen)) != DUROX_OK) {
		dx->st->err[0] = '\0';
		rc = dx_fail(dx, DUROX_EINVALID, "malformed cursor (not a position of this store)");
		goto done;
	}
	buf_add(&e->extra, extra, xlen);
	rc = buf_oom(&e->extra) ? dx_fail(dx, DUROX_ENOMEM, "out of memory") : DUROX_OK;
done:
	buf_free(&raw);
	if (rc != DUROX_OK)
		efeed_close(e);
	return rc;
}

void efeed_close(efeed *e)
{
	if (e->f != NULL)
		e->fv->close(e->f);
	e->f = NULL;
	buf_free(&e->extra);
}

const char *efeed_token(const efeed *e, arena *a, const unsigned char *pos, size_t len, const void *extra,
                        size_t extra_len)
{
	buf b;
	buf_init(&b);
	buf_addc(&b, e->kind);
	buf_addc(&b, TOKEN_VERSION);
	token_put_u64(&b, store_fp(e->dx));
	token_put_u64(&b, e->binding);
	token_put_bytes(&b, pos, len);
	token_put_bytes(&b, extra != NULL ? extra : "", extra != NULL ? extra_len : 0);
	const char *t = buf_oom(&b) ? NULL : token_seal(a, &b);
	buf_free(&b);
	return t;
}

const char *efeed_current(const efeed *e, arena *a, const void *extra, size_t extra_len)
{
	unsigned char pos[STORE_FEED_POS_MAX];
	size_t len = 0;
	if (e->dx->st->fvt->save(e->f, pos, &len) != DUROX_OK)
		return NULL;
	return efeed_token(e, a, pos, len, extra, extra_len);
}

int64_t efeed_event_ts(const char *text, size_t len, int64_t def)
{
	static const char key[] = "\"timestamp_ms\":";
	const size_t klen = sizeof key - 1;
	if (text == NULL || len < klen)
		return def;
	/* Duroxide writes the common fields first and escapes quotes inside strings, so the first
	 * match is the top-level member */
	for (size_t i = 0; i + klen <= len; i++) {
		if (text[i] != '"' || memcmp(text + i, key, klen) != 0)
			continue;
		size_t p = i + klen;
		while (p < len && text[p] == ' ')
			p++;
		int64_t v = 0;
		int digits = 0;
		while (p < len && text[p] >= '0' && text[p] <= '9' && digits < 19) {
			v = v * 10 + (text[p++] - '0');
			digits++;
		}
		return digits > 0 ? v : def;
	}
	return def;
}

/* ---- durox_read_changes --------------------------------------------------------------- */

/* The handle's feed for read_changes and the last cursor it returned. */
struct changes_state {
	efeed e;
	char *last_cursor;
};

typedef struct changes_result {
	durox_changes pub;
	arena mem;
	size_t cap;
	int rc;
} changes_result;

void durox_changes_free(durox_changes *c)
{
	if (c == NULL)
		return;
	changes_result *r = (changes_result *)c;
	free(r->pub.changes);
	arena_release(&r->mem);
	free(r);
}

void feed_state_free(struct changes_state *cs)
{
	if (cs == NULL)
		return;
	efeed_close(&cs->e);
	free(cs->last_cursor);
	free(cs);
}

typedef struct changes_ctx {
	changes_result *r;
	const efeed *e;
	int payloads;
} changes_ctx;

static int change_cb(void *ud, const store_feed_row *row)
{
	changes_ctx *c = ud;
	changes_result *r = c->r;
	if (r->pub.count == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 64;
		durox_change *n = realloc(r->pub.changes, ncap * sizeof *n);
		if (n == NULL)
			return DUROX_ENOMEM;
		r->pub.changes = n;
		r->cap = ncap;
	}
	durox_change *ch = &r->pub.changes[r->pub.count];
	memset(ch, 0, sizeof *ch);
	ch->instance_id = arena_strdup(&r->mem, row->instance_id);
	ch->event_type = arena_strdup(&r->mem, row->event_type);
	ch->execution_id = row->execution_id;
	ch->event_id = row->event_id;
	ch->created_at = row->created_at;
	ch->timestamp = row->data != NULL ? efeed_event_ts(row->data, row->data_len, row->created_at) : row->created_at;
	if (c->payloads && row->data != NULL)
		ch->data = arena_strndup(&r->mem, row->data, row->data_len);
	ch->cursor = efeed_token(c->e, &r->mem, row->pos, row->pos_len, NULL, 0);
	if (ch->instance_id == NULL || ch->event_type == NULL || ch->cursor == NULL ||
	    (c->payloads && row->data != NULL && ch->data == NULL))
		return DUROX_ENOMEM;
	r->pub.count++;
	return 0;
}

/* Marks the instances the caller may see (access_visible_by_id). */
static int visible_cb(void *ud, const durox_instance_summary *s)
{
	int created;
	return hmap_put(ud, s->instance_id, strlen(s->instance_id), &created) != NULL ? 0 : DUROX_ENOMEM;
}

/* With a policy: drops the changes of instances the caller may not see (nothing else tells
 * that they exist). */
static int drop_hidden(durox *dx, access_view *v, changes_result *r)
{
	if (r->pub.count == 0)
		return DUROX_OK;
	const char **ids = malloc(r->pub.count * sizeof *ids);
	if (ids == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	hmap uniq, vis;
	hmap_init(&uniq);
	hmap_init(&vis);
	size_t n = 0;
	int rc = DUROX_OK;
	for (size_t i = 0; i < r->pub.count; i++) {
		const char *id = r->pub.changes[i].instance_id;
		int created;
		if (hmap_put(&uniq, id, strlen(id), &created) == NULL) {
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
		if (created)
			ids[n++] = id;
	}
	if (rc == DUROX_OK)
		rc = access_visible_by_id(v, ids, n, visible_cb, &vis);
	if (rc == DUROX_OK) {
		size_t w = 0;
		for (size_t i = 0; i < r->pub.count; i++) {
			const char *id = r->pub.changes[i].instance_id;
			if (hmap_get(&vis, id, strlen(id)) != NULL)
				r->pub.changes[w++] = r->pub.changes[i];
		}
		r->pub.count = w;
	}
	free(ids);
	hmap_free(&uniq);
	hmap_free(&vis);
	return rc;
}

static int read_changes(durox *dx, const durox_changes_request *req, access_view *view, durox_changes **out);

int durox_read_changes(durox *dx, const durox_changes_request *req, durox_changes **out)
{
	dx_clear(dx);
	*out = NULL;
	if (!dx->cfg.enable_streaming)
		return dx_fail(dx, DUROX_EDENIED,
		               "streaming is disabled by the configuration (enable_streaming = false)");
	/* the one enforcement point: can_list_instances, then only the rows of instances the caller
	 * may see (payloads only under a constant can_view_history) */
	access_view view;
	int rc = access_view_open(dx, "read_changes", NULL, &view);
	if (rc == DUROX_OK)
		rc = read_changes(dx, req, &view, out);
	access_view_close(&view);
	return rc;
}

static int read_changes(durox *dx, const durox_changes_request *req, access_view *view, durox_changes **out)
{
	struct changes_state *cs = dx->changes;
	int rc;
	uint64_t binding = access_fingerprint(dx, 0);
	/* the handle's feed serves when the caller continues from the cursor it was last given */
	int reuse = cs != NULL && cs->e.f != NULL && req->cursor != NULL && cs->last_cursor != NULL &&
	            strcmp(req->cursor, cs->last_cursor) == 0;
	if (!reuse) {
		if (cs == NULL) {
			if ((cs = calloc(1, sizeof *cs)) == NULL)
				return dx_fail(dx, DUROX_ENOMEM, "out of memory");
			dx->changes = cs;
		}
		efeed_close(&cs->e);
		free(cs->last_cursor);
		cs->last_cursor = NULL;
		if ((rc = efeed_open(dx, &cs->e, EFEED_CHANGES, binding, req->cursor, req->from_now)) != DUROX_OK)
			return rc;
	}
	changes_result *r = calloc(1, sizeof *r);
	if (r == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&r->mem);
	store_feed_request rq = {0};
	rq.limit = req->limit;
	rq.with_data = 1; /* the event's own timestamp is in its JSON */
	rq.verify_ms = req->verify_ms;
	store_feed_result fr;
	/* payloads only for a caller whose policy always lets them see history (can_view_history) */
	changes_ctx c = {r, &cs->e, req->include_payloads && access_payloads_visible(dx)};
	rc = dx->st->fvt->poll(cs->e.f, &rq, change_cb, &c, &fr);
	if (rc != DUROX_OK) {
		rc = rc == DUROX_ENOMEM ? dx_fail(dx, rc, "out of memory") : dx_store_fail(dx, rc);
		durox_changes_free(&r->pub);
		efeed_close(&cs->e);
		return rc;
	}
	if (access_enabled(dx) && (rc = drop_hidden(dx, view, r)) != DUROX_OK) {
		durox_changes_free(&r->pub);
		return rc;
	}
	r->pub.more = fr.more;
	r->pub.idle = fr.idle;
	r->pub.reset = fr.reset;
	r->pub.verified = fr.verified;
	r->pub.reset_reason = fr.reset ? arena_strdup(&r->mem, fr.reason) : NULL;
	r->pub.cursor = efeed_current(&cs->e, &r->mem, NULL, 0);
	free(cs->last_cursor);
	cs->last_cursor = r->pub.cursor != NULL ? strdup(r->pub.cursor) : NULL;
	if (r->pub.cursor == NULL || cs->last_cursor == NULL || (fr.reset && r->pub.reset_reason == NULL)) {
		durox_changes_free(&r->pub);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	*out = &r->pub;
	return DUROX_OK;
}
