/*
 * fuzz_token.c - libFuzzer target for page tokens (src/engine/token.c and their readers in
 * list.c and history.c). The first input byte picks a request (a listing filter, order,
 * direction and page size, or a history request), the rest is the token. With bit 6 of the
 * selector set the rest is the token's raw content, sealed here with its checksum first: the
 * checksum only catches damage (its salt is in the source, anyone can forge a token), so the
 * readers must survive any content. The store is $DUROX_FUZZ_DB (opened read-only: the
 * fixtures' scenario store in scripts/test.sh) or an empty in-memory store. Besides the
 * sanitizers' checks it aborts when an invariant fails:
 * - a refused token gives DUROX_EINVALID and one of the documented one-line messages;
 * - an accepted listing token gives at most page_size instances, in the request's order
 *   (order key, then instance_id, strictly), and its next_page_token is accepted in turn and
 *   continues strictly after the page's last instance;
 * - an accepted history token gives at most page_size events in increasing event_id order.
 * With $DUROX_FUZZ_MAKE_CORPUS=DIR set, the target first writes seeds to DIR: the tokens the
 * store really issues for each request (how corpus/token was made from the scenario store).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durox.h"
#include "engine/token.h"
#include "util/arena.h"
#include "util/buf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static durox *dx;
static durox_filter *filters[4];
static const char *const filter_text[4] = {NULL, "status = 'Completed'", "name = 'Sequence' OR status = 'Running'",
                                           "execution_count >= 1 AND created_at > 0"};
static const uint32_t page_sizes[4] = {1, 3, 7, 50};
static const char *const history_ids[4] = {"completed-seq-1", "can-done-1", "tree-done-1", "payload-64k-event-1"};

static void die(const char *what, const char *token, const char *detail)
{
	fprintf(stderr, "fuzz_token: %s\ntoken: %s\ndetail: %s\n", what, token ? token : "(null)",
	        detail ? detail : "");
	abort();
}

static void request_for(int sel, durox_list_request *req)
{
	memset(req, 0, sizeof *req);
	req->filter = filters[sel & 3];
	req->order_by = (sel >> 2) & 3;
	req->direction = (sel >> 4) & 1 ? DUROX_DIR_ASC : DUROX_DIR_DESC;
	req->page_size = page_sizes[(sel >> 5) & 1 ? 1 : 0];
}

static void history_for(int sel, durox_history_request *req)
{
	durox_history_request_init(req, history_ids[sel & 3]);
	req->page_size = page_sizes[(sel >> 2) & 3];
	if ((sel >> 4) & 1) {
		static const char *const types[] = {"ActivityScheduled", "ActivityCompleted"};
		req->event_types = types;
		req->n_event_types = 2;
	}
}

static void write_seed(const char *dir, int sel, const char *token, int n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/sel%03d-%d", dir, sel, n);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return;
	fputc(sel, f);
	fputs(token, f);
	fclose(f);
}

static void make_corpus(const char *dir)
{
	for (int sel = 0; sel < 64; sel++) {
		durox_list_request req;
		request_for(sel, &req);
		durox_instance_list *l = NULL;
		if (durox_list_instances_paginated(dx, &req, &l) == DUROX_OK && l->next_page_token != NULL) {
			write_seed(dir, sel, l->next_page_token, 1);
			req.page_token = l->next_page_token;
			durox_instance_list *l2 = NULL;
			if (durox_list_instances_paginated(dx, &req, &l2) == DUROX_OK && l2->next_page_token != NULL)
				write_seed(dir, sel, l2->next_page_token, 2);
			durox_instance_list_free(l2);
		}
		durox_instance_list_free(l);
	}
	for (int sel = 128; sel < 160; sel++) {
		durox_history_request req;
		history_for(sel, &req);
		durox_history *h = NULL;
		if (durox_get_execution_history_filtered(dx, &req, &h) == DUROX_OK && h->next_page_token != NULL)
			write_seed(dir, sel, h->next_page_token, 1);
		durox_history_free(h);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[512];
	const char *db = getenv("DUROX_FUZZ_DB");
	char url[4096];
	snprintf(url, sizeof url, "sqlite:%s", db != NULL && db[0] ? db : ":memory:");
	durox_open_options o = {.readonly = db != NULL && db[0]};
	if (durox_open(url, &o, &dx, err, sizeof err) != DUROX_OK) {
		fprintf(stderr, "fuzz_token: cannot open %s: %s\n", url, err);
		abort();
	}
	for (int k = 1; k < 4; k++)
		if (durox_filter_parse(filter_text[k], &filters[k], err, sizeof err) != DUROX_OK) {
			fprintf(stderr, "fuzz_token: %s\n", err);
			abort();
		}
	const char *dir = getenv("DUROX_FUZZ_MAKE_CORPUS");
	if (dir != NULL && dir[0])
		make_corpus(dir);
	return 0;
}

static int one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20)
			return 0;
	return 1;
}

static void expect_refusal(int rc, const char *token, int history)
{
	const char *msg = durox_errmsg(dx);
	if (rc != DUROX_EINVALID)
		die("a token was refused with another code than DUROX_EINVALID", token, msg);
	if (!one_line(msg))
		die("the refusal is not one line", token, msg);
	const char *a = history ? "malformed history page token" : "malformed page token";
	const char *b = history ? "page token was issued for a different history request"
	                        : "page token was issued for a different filter or order";
	if (strncmp(msg, a, strlen(a)) != 0 && strncmp(msg, b, strlen(b)) != 0)
		die("an undocumented refusal", token, msg);
}

static int64_t key_of(const durox_instance_summary *s, int order)
{
	return order == DUROX_ORDER_UPDATED_AT ? s->updated_at : s->created_at;
}

/* <0, 0, >0 as a is before, equal to, after b in (key, instance_id) ascending. */
static int cmp_asc(const durox_instance_summary *a, const durox_instance_summary *b, int order)
{
	int c = 0;
	if (order == DUROX_ORDER_CREATED_AT || order == DUROX_ORDER_UPDATED_AT) {
		int64_t x = key_of(a, order), y = key_of(b, order);
		c = x < y ? -1 : x > y;
	} else if (order == DUROX_ORDER_ORCHESTRATION_NAME) {
		c = strcmp(a->orchestration_name, b->orchestration_name);
	}
	return c != 0 ? c : strcmp(a->instance_id, b->instance_id);
}

static void check_order(const durox_instance_summary *a, const durox_instance_summary *b, const durox_list_request *req,
                        const char *token)
{
	int c = cmp_asc(a, b, req->order_by);
	if (req->direction == DUROX_DIR_DESC)
		c = -c;
	if (c >= 0)
		die("instances out of order (or repeated) across a token", token, b->instance_id);
}

static void fuzz_list(int sel, const char *token)
{
	durox_list_request req;
	request_for(sel, &req);
	req.page_token = token;
	durox_instance_list *l = NULL;
	int rc = durox_list_instances_paginated(dx, &req, &l);
	if (rc != DUROX_OK) {
		expect_refusal(rc, token, 0);
		return;
	}
	if (l->count > req.page_size)
		die("more instances than page_size", token, NULL);
	for (size_t k = 1; k < l->count; k++)
		check_order(&l->items[k - 1], &l->items[k], &req, token);
	if (l->next_page_token != NULL) {
		if (l->count == 0)
			die("an empty page with a next token", token, NULL);
		durox_list_request next = req;
		next.page_token = l->next_page_token;
		durox_instance_list *l2 = NULL;
		rc = durox_list_instances_paginated(dx, &next, &l2);
		if (rc != DUROX_OK)
			die("a next_page_token we issued is refused", l->next_page_token, durox_errmsg(dx));
		if (l2->count > 0)
			check_order(&l->items[l->count - 1], &l2->items[0], &req, l->next_page_token);
		durox_instance_list_free(l2);
	}
	durox_instance_list_free(l);
}

static void fuzz_history(int sel, const char *token)
{
	durox_history_request req;
	history_for(sel, &req);
	req.page_token = token;
	durox_history *h = NULL;
	int rc = durox_get_execution_history_filtered(dx, &req, &h);
	if (rc == DUROX_ENOTFOUND) /* the in-memory store has no such instance */
		return;
	if (rc != DUROX_OK) {
		expect_refusal(rc, token, 1);
		return;
	}
	if (req.page_size > 0 && h->count > req.page_size)
		die("more events than page_size", token, NULL);
	for (size_t k = 1; k < h->count; k++)
		if (h->events[k].event_id <= h->events[k - 1].event_id)
			die("events out of order", token, NULL);
	durox_history_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	int sel = data[0];
	char *token = NULL;
	if (sel & 64) {
		/* raw content: seal it as token_seal does (checksum appended, base64url) */
		arena a;
		arena_init(&a);
		buf b;
		buf_init(&b);
		buf_add(&b, data + 1, size - 1);
		const char *t = token_seal(&a, &b);
		buf_free(&b);
		token = t != NULL ? strdup(t) : NULL;
		arena_release(&a);
	} else {
		token = malloc(size);
		if (token != NULL) {
			memcpy(token, data + 1, size - 1);
			token[size - 1] = '\0';
		}
	}
	if (token == NULL)
		return 0;
	if (sel & 128)
		fuzz_history(sel, token);
	else
		fuzz_list(sel, token);
	free(token);
	return 0;
}
