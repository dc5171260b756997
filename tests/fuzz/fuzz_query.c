/*
 * fuzz_query.c - libFuzzer target for the query language parser (src/engine/query.c),
 * built with -DDUROX_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt), run for a bounded time
 * by scripts/test.sh. Besides the sanitizers' checks it aborts when an invariant fails:
 * - an accepted query's canonical text parses back to the same tree (same kinds, fields,
 *   operators and values, resolved times included) and the same text;
 * - an accepted query runs on a SQLite store (an in-memory Duroxide schema): listing with a
 *   count and search compile and bind without error (too many bound values, LIMIT, is the
 *   one documented refusal);
 * - a refused query leaves the filter untouched and its message is one line of printable
 *   text, "query error at position N: ..." with N inside the query (or its end).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durox.h"
#include "engine/query.h"
#include "store/provider.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z: the same input gives the same tree */

static durox *dx;

static void die(const char *what, const char *text, const char *detail)
{
	fprintf(stderr, "fuzz_query: %s\nquery: %s\ndetail: %s\n", what, text, detail ? detail : "");
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[512];
	if (durox_open("sqlite::memory:", NULL, &dx, err, sizeof err) != DUROX_OK) {
		fprintf(stderr, "fuzz_query: cannot open an in-memory store: %s\n", err);
		abort();
	}
	return 0;
}

static int same_value(const durox_value *a, const durox_value *b)
{
	if (a->type != b->type)
		return 0;
	if (a->type == DUROX_VAL_INT && a->i != b->i)
		return 0;
	if ((a->text == NULL) != (b->text == NULL))
		return 0;
	return a->text == NULL || strcmp(a->text, b->text) == 0;
}

/* Structural equality of two trees (iterative on the left spine of long chains). */
static int same_tree(const durox_expr *a, const durox_expr *b)
{
	while (a != NULL && b != NULL) {
		if (a->kind != b->kind)
			return 0;
		switch (a->kind) {
		case EXPR_AND:
		case EXPR_OR:
			if (!same_tree(a->b, b->b))
				return 0;
			a = a->a;
			b = b->a;
			continue;
		case EXPR_NOT:
			a = a->a;
			b = b->a;
			continue;
		default:
			if (a->field != b->field || a->nvals != b->nvals || (a->kind == EXPR_CMP && a->op != b->op))
				return 0;
			for (size_t k = 0; k < a->nvals; k++)
				if (!same_value(&a->vals[k], &b->vals[k]))
					return 0;
			return 1;
		}
	}
	return a == b;
}

static void check_error(const char *text, const char *err)
{
	if (strcmp(err, "out of memory") == 0)
		return;
	unsigned long pos;
	int n = 0;
	if (sscanf(err, "query error at position %lu: %n", &pos, &n) != 1 || n == 0)
		die("message does not start with 'query error at position N: '", text, err);
	if (pos < 1 || pos > strlen(text) + 1)
		die("error position outside the query", text, err);
	if (err[n] == '\0')
		die("empty error message", text, err);
	for (const unsigned char *p = (const unsigned char *)err; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			die("error message is not one line of printable text", text, err);
}

static void check_runs(const char *text, durox_filter *f)
{
	durox_list_request req = {.filter = f, .page_size = 1, .want_total = 1, .order_by = DUROX_ORDER_UPDATED_AT};
	durox_instance_list *l = NULL;
	int rc = durox_list_instances_paginated(dx, &req, &l);
	durox_instance_list_free(l);
	if (rc != DUROX_OK && rc != DUROX_ELIMIT)
		die("an accepted query does not run on SQLite", text, durox_errmsg(dx));
	durox_search_request sr = {.text = "x", .filter = f, .limit = 1};
	rc = durox_search_instances(dx, &sr, &l);
	durox_instance_list_free(l);
	if (rc != DUROX_OK && rc != DUROX_ELIMIT)
		die("an accepted query does not run on SQLite in a search", text, durox_errmsg(dx));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* a NUL inside ends the query, as in C */
	char err[512];
	durox_filter *f = durox_filter_new();
	if (f == NULL) {
		free(text);
		return 0;
	}
	int rc = query_parse(f, text, NOW, err, sizeof err);
	if (rc != DUROX_OK) {
		if (rc != DUROX_EINVALID && rc != DUROX_ENOMEM)
			die("unexpected result code", text, err);
		check_error(text, err);
		if (f->root != NULL || f->err[0] != '\0')
			die("a refused query changed the filter", text, err);
	} else {
		const char *d1 = durox_filter_describe(f);
		if (d1[0] == '\0' || f->root == NULL)
			die("an accepted query has no tree", text, d1);
		/* the canonical text may outgrow the length limit ('name' -> 'orchestration_name') */
		if (strlen(d1) <= QUERY_MAX_LEN) {
			durox_filter *g = durox_filter_new();
			char err2[512];
			if (g == NULL || query_parse(g, d1, NOW, err2, sizeof err2) != DUROX_OK)
				die("the canonical text does not parse", d1, err2);
			if (strcmp(d1, durox_filter_describe(g)) != 0)
				die("the canonical text of the canonical text differs", d1, durox_filter_describe(g));
			if (!same_tree(f->root, g->root))
				die("the canonical text parses to another tree", text, d1);
			durox_filter_free(g);
		}
		check_runs(text, f);
	}
	durox_filter_free(f);
	free(text);
	return 0;
}
