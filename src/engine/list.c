/*
 * list.c - instance discovery: list_instances, list_instances_paginated (keyset pages
 * and their tokens), search_instances, the streaming iterator, and get_instances_status.
 *
 * Everything is built on one scanner that reads keyset batches from the provider (no
 * transaction survives a batch) and applies the optional predicate after the store's
 * part of the filter, so pages fill even when the predicate drops rows. Page tokens are
 * opaque base64url blobs that carry the order, the filter's fingerprint, the last key
 * and a checksum. Used by the Lua binding and the CLI.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"
#include "engine/internal.h"
#include "engine/token.h"
#include "util/buf.h"
#include "util/codec.h"

#define DEFAULT_PAGE 100

/* Rows per store round trip when the caller did not choose. Only InstanceId order is served
 * by an index (the primary key); the other orders sort the matches on every batch, so their
 * batches are larger to keep full scans few. */
static uint32_t batch_for(int order_by, uint32_t requested)
{
	if (requested > 0)
		return requested;
	return order_by == DUROX_ORDER_INSTANCE_ID ? 256 : 2048;
}

/* ---- scanner -------------------------------------------------------------------- */

typedef struct scan {
	durox *dx;
	store_list_query q;
	durox_predicate_fn pred;
	void *ud;
	uint32_t batch_size;
	arena batch;
	durox_instance_summary *rows;
	size_t n, pos;
	int exhausted;
	buf key_text, last_id; /* cursor copies that outlive a batch */
	int fill_rc;
	access_view view; /* what the caller may see (access.c): q.filter is its filter */
} scan;

static void scan_init(scan *s, durox *dx, const durox_list_request *req, uint32_t batch_size)
{
	memset(s, 0, sizeof *s);
	s->dx = dx;
	s->q.filter = req->filter;
	s->q.order_by = req->order_by;
	int dir = req->direction;
	if (dir == DUROX_DIR_DEFAULT)
		dir = req->order_by == DUROX_ORDER_CREATED_AT || req->order_by == DUROX_ORDER_UPDATED_AT
		              ? DUROX_DIR_DESC
		              : DUROX_DIR_ASC;
	s->q.descending = dir == DUROX_DIR_DESC;
	s->pred = req->predicate;
	s->ud = req->predicate_ud;
	s->batch_size = batch_size;
	arena_init(&s->batch);
	buf_init(&s->key_text);
	buf_init(&s->last_id);
}

/* Opens the caller's view of the request's filter for operation and points the query at it. */
static int scan_open_view(scan *s, const char *operation)
{
	int rc = access_view_open(s->dx, operation, s->q.filter, &s->view);
	s->q.filter = s->view.filter;
	return rc;
}

static void scan_free(scan *s)
{
	access_view_close(&s->view);
	arena_release(&s->batch);
	buf_free(&s->key_text);
	buf_free(&s->last_id);
}

/* Sets the scanner's position to just after summary r. */
static int scan_set_cursor(scan *s, int order_by, const durox_instance_summary *r)
{
	s->q.after.active = 1;
	buf_reset(&s->last_id);
	buf_adds(&s->last_id, r->instance_id);
	s->q.after.key_is_text = order_by == DUROX_ORDER_ORCHESTRATION_NAME || order_by == DUROX_ORDER_INSTANCE_ID;
	if (order_by == DUROX_ORDER_ORCHESTRATION_NAME) {
		buf_reset(&s->key_text);
		buf_adds(&s->key_text, r->orchestration_name);
	} else if (order_by == DUROX_ORDER_INSTANCE_ID) {
		buf_reset(&s->key_text);
		buf_adds(&s->key_text, r->instance_id);
	} else {
		s->q.after.key_int = order_by == DUROX_ORDER_UPDATED_AT ? r->updated_at : r->created_at;
	}
	if (buf_oom(&s->last_id) || buf_oom(&s->key_text))
		return DUROX_ENOMEM;
	s->q.after.instance_id = buf_str(&s->last_id);
	s->q.after.key_text = buf_str(&s->key_text);
	return DUROX_OK;
}

static int fill_cb(void *ud, const durox_instance_summary *r)
{
	scan *s = ud;
	if (summary_copy(&s->batch, &s->rows[s->n], r) != DUROX_OK) {
		s->fill_rc = DUROX_ENOMEM;
		return -1;
	}
	s->n++;
	return 0;
}

static int scan_fetch(scan *s)
{
	if (s->n > 0) {
		int rc = scan_set_cursor(s, s->q.order_by, &s->rows[s->n - 1]);
		if (rc != DUROX_OK)
			return dx_fail(s->dx, rc, "out of memory");
	}
	arena_release(&s->batch);
	s->n = s->pos = 0;
	s->rows = arena_calloc(&s->batch, s->batch_size, sizeof *s->rows);
	if (s->rows == NULL)
		return dx_fail(s->dx, DUROX_ENOMEM, "out of memory");
	s->q.limit = s->batch_size;
	s->fill_rc = DUROX_OK;
	int rc = s->dx->st->vt->list(s->dx->st, &s->q, fill_cb, s);
	if (rc != DUROX_OK)
		return s->fill_rc != DUROX_OK ? dx_fail(s->dx, s->fill_rc, "out of memory") : dx_store_fail(s->dx, rc);
	if (s->n < s->batch_size)
		s->exhausted = 1;
	return DUROX_OK;
}

/* Next match: 1 with *out set (valid until the next call), 0 at the end, <0 on error. */
static int scan_next(scan *s, const durox_instance_summary **out)
{
	for (;;) {
		if (s->pos < s->n) {
			const durox_instance_summary *r = &s->rows[s->pos++];
			if (s->view.per_row || s->view.nothing) {
				int vis = access_view_row(&s->view, r);
				if (vis < 0)
					return vis;
				if (vis == 0)
					continue;
			}
			if (s->pred != NULL) {
				int keep = s->pred(s->ud, r);
				if (keep < 0) {
					if (s->dx->err[0] == '\0')
						dx_fail(s->dx, keep, "the predicate stopped the listing");
					return keep;
				}
				if (keep == 0)
					continue;
			}
			*out = r;
			return 1;
		}
		if (s->exhausted)
			return 0;
		int rc = scan_fetch(s);
		if (rc != DUROX_OK)
			return rc;
	}
}

/* ---- tokens ---------------------------------------------------------------------- */

/* The token fingerprint: the caller's filter and predicate, and under a policy the caller's
 * identity and the policy's filter, so a token works only for its caller and policy. */
static uint64_t fingerprint(durox *dx, const durox_list_request *req, const access_view *v)
{
	uint64_t h = FNV1A64_INIT;
	const char *d = req->filter != NULL ? durox_filter_describe((durox_filter *)req->filter) : "TRUE";
	h = fnv1a64(h, d, strlen(d));
	if (req->predicate != NULL)
		h = fnv1a64(h, "|predicate", 10);
	if (v->policy != NULL) {
		const char *p = durox_filter_describe(v->policy);
		h = fnv1a64(h, "|policy:", 8);
		h = fnv1a64(h, p, strlen(p));
	}
	return access_fingerprint(dx, h);
}

/* Encodes a page token positioned after summary r into a (arena string). */
static const char *encode_page_token(arena *a, const scan *s, uint64_t fp, const durox_instance_summary *r)
{
	buf b;
	buf_init(&b);
	buf_addc(&b, 'P');
	buf_addc(&b, (char)s->q.order_by);
	buf_addc(&b, (char)s->q.descending);
	token_put_u64(&b, fp);
	int order = s->q.order_by;
	if (order == DUROX_ORDER_ORCHESTRATION_NAME)
		token_put_str(&b, r->orchestration_name);
	else if (order == DUROX_ORDER_CREATED_AT || order == DUROX_ORDER_UPDATED_AT)
		token_put_u64(&b, (uint64_t)(order == DUROX_ORDER_UPDATED_AT ? r->updated_at : r->created_at));
	token_put_str(&b, r->instance_id);
	const char *res = token_seal(a, &b);
	buf_free(&b);
	return res;
}

/* Positions s from a page token, checking that it belongs to this order and filter. */
static int decode_page_token(scan *s, uint64_t fp, const char *token)
{
	buf raw;
	buf_init(&raw);
	int rc = DUROX_EINVALID;
	arena tmp;
	arena_init(&tmp);
	if (token_open(token, &raw) != 0) {
		dx_fail(s->dx, DUROX_EINVALID, "malformed page token");
		goto done;
	}
	token_reader r;
	token_reader_init(&r, &raw);
	if (token_get_u8(&r) != 'P') {
		dx_fail(s->dx, DUROX_EINVALID, "malformed page token (not a listing token)");
		goto done;
	}
	int order = token_get_u8(&r), desc = token_get_u8(&r);
	uint64_t tfp = token_get_u64(&r);
	if (r.bad || order != s->q.order_by || desc != s->q.descending || tfp != fp) {
		dx_fail(s->dx, DUROX_EINVALID,
		        "page token was issued for a different filter or order; repeat the first request without a "
		        "token");
		goto done;
	}
	durox_instance_summary pos = {0};
	const char *key = NULL, *id;
	size_t keylen = 0, idlen = 0;
	if (order == DUROX_ORDER_ORCHESTRATION_NAME)
		key = token_get_str(&r, &keylen);
	else if (order == DUROX_ORDER_UPDATED_AT)
		pos.updated_at = (int64_t)token_get_u64(&r);
	else if (order == DUROX_ORDER_CREATED_AT)
		pos.created_at = (int64_t)token_get_u64(&r);
	id = token_get_str(&r, &idlen);
	if (!token_reader_done(&r)) {
		dx_fail(s->dx, DUROX_EINVALID, "malformed page token (truncated)");
		goto done;
	}
	pos.instance_id = arena_strndup(&tmp, id, idlen);
	pos.orchestration_name = key != NULL ? arena_strndup(&tmp, key, keylen) : "";
	if (pos.instance_id == NULL || pos.orchestration_name == NULL)
		rc = dx_fail(s->dx, DUROX_ENOMEM, "out of memory");
	else
		rc = scan_set_cursor(s, order, &pos);
done:
	arena_release(&tmp);
	buf_free(&raw);
	return rc;
}

/* ---- results ------------------------------------------------------------------- */

typedef struct list_result {
	durox_instance_list pub;
	arena mem;
	size_t cap;
} list_result;

static list_result *result_new(size_t cap)
{
	list_result *lr = calloc(1, sizeof *lr);
	if (lr == NULL)
		return NULL;
	arena_init(&lr->mem);
	lr->pub.total_count = -1;
	lr->cap = cap;
	lr->pub.items = arena_calloc(&lr->mem, cap ? cap : 1, sizeof(durox_instance_summary));
	if (lr->pub.items == NULL) {
		free(lr);
		return NULL;
	}
	return lr;
}

void durox_instance_list_free(durox_instance_list *l)
{
	if (l == NULL)
		return;
	list_result *lr = (list_result *)l;
	arena_release(&lr->mem);
	free(lr);
}

/* Appends a copy of r, growing the array. */
static int result_push(list_result *lr, const durox_instance_summary *r)
{
	if (lr->pub.count == lr->cap) {
		size_t cap = lr->cap * 2;
		durox_instance_summary *items = arena_calloc(&lr->mem, cap, sizeof *items);
		if (items == NULL)
			return DUROX_ENOMEM;
		memcpy(items, lr->pub.items, lr->pub.count * sizeof *items);
		lr->pub.items = items;
		lr->cap = cap;
	}
	return summary_copy(&lr->mem, &lr->pub.items[lr->pub.count++], r);
}

static int check_request(durox *dx, const durox_list_request *req)
{
	if (req->order_by < DUROX_ORDER_CREATED_AT || req->order_by > DUROX_ORDER_ORCHESTRATION_NAME)
		return dx_fail(dx, DUROX_EINVALID,
		               "unknown order_by (expected CreatedAt, UpdatedAt, InstanceId or OrchestrationName)");
	if (req->direction < DUROX_DIR_DEFAULT || req->direction > DUROX_DIR_DESC)
		return dx_fail(dx, DUROX_EINVALID, "unknown direction");
	return DUROX_OK;
}

/* Counts what the caller may see of req (view: the caller's view, already open). */
static int count_matches(durox *dx, const durox_list_request *req, const access_view *view, int64_t *out)
{
	*out = 0;
	if (req->predicate == NULL && !view->per_row && !view->nothing) {
		int rc = dx->st->vt->count(dx->st, view->filter, out);
		return rc == DUROX_OK ? rc : dx_store_fail(dx, rc);
	}
	scan s;
	scan_init(&s, dx, req, batch_for(req->order_by, 0));
	s.view = *view; /* borrowed: the caller closes it */
	s.q.filter = view->filter;
	const durox_instance_summary *r;
	int rc;
	while ((rc = scan_next(&s, &r)) == 1)
		(*out)++;
	memset(&s.view, 0, sizeof s.view);
	scan_free(&s);
	return rc;
}

int durox_list_instances_paginated(durox *dx, const durox_list_request *req, durox_instance_list **out)
{
	*out = NULL;
	dx_clear(dx);
	int rc = check_request(dx, req);
	if (rc != DUROX_OK)
		return rc;
	uint32_t size = req->page_size ? req->page_size : DEFAULT_PAGE;
	if (size > dx->cfg.max_list_instances)
		size = dx->cfg.max_list_instances;
	uint32_t batch = size + 1;
	if (req->predicate != NULL && batch < 128)
		batch = 128;
	scan s;
	scan_init(&s, dx, req, batch);
	list_result *lr = NULL;
	if ((rc = scan_open_view(&s, "list_instances_paginated")) != DUROX_OK)
		goto done;
	uint64_t fp = fingerprint(dx, req, &s.view);
	if (req->page_token != NULL && req->page_token[0] != '\0' &&
	    (rc = decode_page_token(&s, fp, req->page_token)) != DUROX_OK)
		goto done;
	lr = result_new(size + 1);
	if (lr == NULL) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	const durox_instance_summary *r;
	while (lr->pub.count < (size_t)size + 1 && (rc = scan_next(&s, &r)) == 1) {
		if (result_push(lr, r) != DUROX_OK) {
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			goto done;
		}
	}
	if (rc < 0)
		goto done;
	rc = DUROX_OK;
	if (lr->pub.count > size) {
		lr->pub.count = size;
		lr->pub.next_page_token = encode_page_token(&lr->mem, &s, fp, &lr->pub.items[size - 1]);
		if (lr->pub.next_page_token == NULL) {
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			goto done;
		}
	}
	if (req->want_total && (rc = count_matches(dx, req, &s.view, &lr->pub.total_count)) != DUROX_OK)
		goto done;
done:
	scan_free(&s);
	if (rc != DUROX_OK) {
		if (lr != NULL)
			durox_instance_list_free(&lr->pub);
		return rc;
	}
	*out = &lr->pub;
	return DUROX_OK;
}

typedef struct direct_fill {
	list_result *lr;
	int rc;
} direct_fill;

static int direct_cb(void *ud, const durox_instance_summary *r)
{
	direct_fill *d = ud;
	if (result_push(d->lr, r) != DUROX_OK) {
		d->rc = DUROX_ENOMEM;
		return -1;
	}
	return 0;
}

/* collect() when every row the store returns is kept (no predicate, no per-row policy): one
 * store call for up to cap + 1 rows, straight into the result, instead of keyset batches
 * (each a new query) copied twice. */
static int collect_direct(durox *dx, scan *s, uint32_t cap, int limit_is_error, list_result *lr)
{
	store_list_query q = s->q;
	q.limit = cap < UINT32_MAX ? cap + 1 : cap;
	direct_fill d = {lr, DUROX_OK};
	int rc = dx->st->vt->list(dx->st, &q, direct_cb, &d);
	if (rc != DUROX_OK)
		return d.rc != DUROX_OK ? dx_fail(dx, d.rc, "out of memory") : dx_store_fail(dx, rc);
	if (lr->pub.count > cap) {
		lr->pub.count = cap;
		if (limit_is_error)
			return dx_fail(dx, DUROX_ELIMIT,
			               "more than %u instances match (max_list_instances); narrow the filter or use "
			               "list_instances_paginated or the instances() iterator",
			               (unsigned)cap);
	}
	return DUROX_OK;
}

/* Collects every match the caller may see (at most cap, else DUROX_ELIMIT) of req into *out. */
static int collect(durox *dx, const char *operation, const durox_list_request *req, uint32_t cap, int limit_is_error,
                   durox_instance_list **out)
{
	*out = NULL;
	scan s;
	scan_init(&s, dx, req, batch_for(req->order_by, 0));
	int rc = scan_open_view(&s, operation);
	if (rc != DUROX_OK) {
		scan_free(&s);
		return rc;
	}
	list_result *lr = result_new(64);
	if (lr == NULL) {
		scan_free(&s);
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	}
	if (s.pred == NULL && !s.view.per_row && !s.view.nothing) {
		rc = collect_direct(dx, &s, cap, limit_is_error, lr);
		scan_free(&s);
		if (rc != DUROX_OK) {
			durox_instance_list_free(&lr->pub);
			return rc;
		}
		*out = &lr->pub;
		return DUROX_OK;
	}
	const durox_instance_summary *r;
	while ((rc = scan_next(&s, &r)) == 1) {
		if (lr->pub.count >= cap) {
			if (limit_is_error) {
				rc = dx_fail(
				        dx, DUROX_ELIMIT,
				        "more than %u instances match (max_list_instances); narrow the filter or use "
				        "list_instances_paginated or the instances() iterator",
				        (unsigned)cap);
			} else {
				rc = DUROX_OK;
			}
			break;
		}
		if (result_push(lr, r) != DUROX_OK) {
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
			break;
		}
	}
	scan_free(&s);
	if (rc < 0) {
		durox_instance_list_free(&lr->pub);
		return rc;
	}
	*out = &lr->pub;
	return DUROX_OK;
}

int durox_list_instances(durox *dx, const durox_filter *filter, durox_predicate_fn pred, void *ud,
                         durox_instance_list **out)
{
	*out = NULL;
	dx_clear(dx);
	durox_list_request req = {
	        .filter = filter, .predicate = pred, .predicate_ud = ud, .order_by = DUROX_ORDER_CREATED_AT};
	return collect(dx, "list_instances", &req, dx->cfg.max_list_instances, 1, out);
}

int durox_search_instances(durox *dx, const durox_search_request *req, durox_instance_list **out)
{
	*out = NULL;
	dx_clear(dx);
	if (req->text == NULL || req->text[0] == '\0')
		return dx_fail(dx, DUROX_EINVALID, "search text is empty");
	durox_filter *f = durox_filter_new();
	if (f == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	durox_value v = {.type = DUROX_VAL_TEXT, .text = req->text};
	durox_expr *e = durox_expr_cmp(f, DUROX_FIELD_TEXT, DUROX_OP_CONTAINS, &v);
	if (e != NULL && req->filter != NULL && req->filter->root != NULL)
		e = durox_expr_and(f, req->filter->root, e); /* borrows the caller's tree for this call */
	int rc = durox_filter_add(f, e);
	if (rc != DUROX_OK) {
		rc = dx_fail(dx, rc, "%s", durox_filter_error(f));
		durox_filter_free(f);
		return rc;
	}
	uint32_t limit = req->limit ? req->limit : dx->cfg.max_list_instances;
	if (limit > dx->cfg.max_list_instances)
		limit = dx->cfg.max_list_instances;
	durox_list_request lr = {.filter = f,
	                         .predicate = req->predicate,
	                         .predicate_ud = req->predicate_ud,
	                         .order_by = DUROX_ORDER_CREATED_AT};
	rc = collect(dx, "search_instances", &lr, limit, 0, out);
	durox_filter_free(f);
	return rc;
}

/* ---- iterator -------------------------------------------------------------------- */

struct durox_instance_iter {
	scan s;
};

int instance_iter_open(durox *dx, const char *operation, const durox_list_request *req, durox_instance_iter **out)
{
	*out = NULL;
	dx_clear(dx);
	int rc = check_request(dx, req);
	if (rc != DUROX_OK)
		return rc;
	durox_instance_iter *it = calloc(1, sizeof *it);
	if (it == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	scan_init(&it->s, dx, req, batch_for(req->order_by, req->page_size));
	if ((rc = scan_open_view(&it->s, operation)) != DUROX_OK) {
		durox_instance_iter_free(it);
		return rc;
	}
	*out = it;
	return DUROX_OK;
}

int durox_instance_iter_new(durox *dx, const durox_list_request *req, durox_instance_iter **out)
{
	return instance_iter_open(dx, "instances", req, out);
}

int durox_instance_iter_next(durox_instance_iter *it, const durox_instance_summary **s)
{
	*s = NULL;
	dx_clear(it->s.dx);
	return scan_next(&it->s, s);
}

void durox_instance_iter_free(durox_instance_iter *it)
{
	if (it == NULL)
		return;
	scan_free(&it->s);
	free(it);
}

/* ---- bulk status ---------------------------------------------------------------- */

typedef struct status_result {
	durox_status_list pub;
	arena mem;
} status_result;

typedef struct found_set {
	durox_status_item *items;
	size_t n, cap;
	arena *mem;
	int rc;
} found_set;

static int found_cb(void *ud, const durox_instance_summary *r)
{
	found_set *fs = ud;
	if (fs->n == fs->cap) {
		fs->rc = DUROX_ELIMIT; /* cannot happen: at most one row per requested id */
		return -1;
	}
	durox_status_item *it = &fs->items[fs->n];
	it->instance_id = arena_strdup(fs->mem, r->instance_id);
	if (it->instance_id == NULL) {
		fs->rc = DUROX_ENOMEM;
		return -1;
	}
	it->status = r->status;
	it->failure_kind = r->failure_kind;
	fs->n++;
	return 0;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const durox_status_item *)a)->instance_id, ((const durox_status_item *)b)->instance_id);
}

void durox_status_list_free(durox_status_list *l)
{
	if (l == NULL)
		return;
	status_result *sr = (status_result *)l;
	arena_release(&sr->mem);
	free(sr);
}

int durox_get_instances_status(durox *dx, const char *const *ids, size_t n, durox_status_list **out)
{
	*out = NULL;
	dx_clear(dx);
	for (size_t k = 0; k < n; k++)
		if (ids[k] == NULL)
			return dx_fail(dx, DUROX_EINVALID, "instance id #%zu is missing", k + 1);
	status_result *sr = calloc(1, sizeof *sr);
	if (sr == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&sr->mem);
	found_set fs = {arena_calloc(&sr->mem, n ? n : 1, sizeof(durox_status_item)), 0, n, &sr->mem, DUROX_OK};
	sr->pub.items = arena_calloc(&sr->mem, n ? n : 1, sizeof(durox_status_item));
	int rc = DUROX_OK;
	if (fs.items == NULL || sr->pub.items == NULL) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	/* Ask the store once per distinct id. */
	const char **uniq = arena_calloc(&sr->mem, n ? n : 1, sizeof(char *));
	if (uniq == NULL) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		goto done;
	}
	memcpy(uniq, ids, n * sizeof(char *));
	qsort(uniq, n, sizeof *uniq, cmp_str_ptr);
	size_t nu = 0;
	for (size_t k = 0; k < n; k++)
		if (nu == 0 || strcmp(uniq[nu - 1], uniq[k]) != 0)
			uniq[nu++] = uniq[k];
	if (access_enabled(dx)) {
		/* hidden instances are NotFound, like missing ones */
		access_view v;
		rc = access_view_open(dx, "get_instances_status", NULL, &v);
		if (rc == DUROX_OK)
			rc = access_visible_by_id(&v, uniq, nu, found_cb, &fs);
		else if (rc == DUROX_EDENIED) /* may list nothing: every id is NotFound (recorded) */
			rc = DUROX_OK;
		access_view_close(&v);
		if (rc == DUROX_EABORT)
			rc = dx_fail(dx, fs.rc != DUROX_OK ? fs.rc : DUROX_ENOMEM, "out of memory");
		if (rc != DUROX_OK)
			goto done;
	} else if ((rc = dx->st->vt->summaries_by_id(dx->st, uniq, nu, found_cb, &fs)) != DUROX_OK) {
		rc = fs.rc != DUROX_OK ? dx_fail(dx, fs.rc, "out of memory") : dx_store_fail(dx, rc);
		goto done;
	}
	qsort(fs.items, fs.n, sizeof *fs.items, cmp_item);
	for (size_t k = 0; k < n; k++) {
		durox_status_item key = {.instance_id = ids[k]};
		const durox_status_item *hit = bsearch(&key, fs.items, fs.n, sizeof *fs.items, cmp_item);
		durox_status_item *it = &sr->pub.items[k];
		if (hit != NULL) {
			*it = *hit;
		} else {
			it->instance_id = arena_strdup(&sr->mem, ids[k]);
			it->status = DUROX_STATUS_NOT_FOUND;
			it->failure_kind = DUROX_FAILURE_NONE;
			if (it->instance_id == NULL) {
				rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
				goto done;
			}
		}
	}
	sr->pub.count = n;
done:
	if (rc != DUROX_OK) {
		durox_status_list_free(&sr->pub);
		return rc;
	}
	*out = &sr->pub;
	return DUROX_OK;
}
