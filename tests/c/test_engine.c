/*
 * test_engine.c - unit tests of the engine through the public API (durox.h) on stores
 * that need no runtime: opening errors, an empty in-memory store (the schema Duroxide
 * creates for in-memory stores), filter validation, tokens and configuration. Tests on
 * stores the real runtime wrote are the busted specs (tests/spec).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durox.h"
#include "t.h"

TEST(open_errors)
{
	durox *dx = (durox *)1;
	char err[512];
	EQ_INT(durox_open("sqlite:/nonexistent/x.db", NULL, &dx, err, sizeof err), DUROX_ENOTFOUND);
	CHECK(dx == NULL);
	EQ_STR(err, "store '/nonexistent/x.db' does not exist (No such file or directory)");
	EQ_INT(durox_open("mysql://x", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "unrecognised store URL 'mysql://x' (expected sqlite:PATH, sqlite::memory: or postgres://...)");
	/* a password is masked in every URL an error shows, also one no provider takes */
	EQ_INT(durox_open("Postgres://u:s3cr@h/db?password=s3cr&a=b", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "unrecognised store URL 'Postgres://u:***@h/db?password=***&a=b' (expected sqlite:PATH, "
	            "sqlite::memory: or postgres://...)");
	EQ_INT(durox_open("pg://u@h,h2:5/db?x=1&pass%77ord=s3cr", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "unrecognised store URL 'pg://u@h,h2:5/db?x=1&pass%77ord=***' (expected sqlite:PATH, "
	            "sqlite::memory: or postgres://...)");
	EQ_INT(durox_open("postgresql://u@127.0.0.1:1/db?password=s3cr&schema=dx", NULL, &dx, err, sizeof err),
	       DUROX_EIO);
	CHECK(strstr(err,
	             "cannot connect to PostgreSQL store postgresql://u@127.0.0.1:1/db?password=***&schema=dx: ") ==
	      err);
	CHECK(strstr(err, "s3cr") == NULL);
	/* PostgreSQL URLs are checked before anything connects */
	EQ_INT(durox_open("postgres://u:secret@h/db?schema=Bad%20Name", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "invalid schema name 'Bad%20Name' in store URL (expected lower-case letters, digits and _, not "
	            "starting with a digit, at most 63)");
	EQ_INT(durox_open("postgresql://u@h/db?schema=dx&state_schema=dx", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_INT(durox_open("postgres://u@h/db?statement_timeout=soon", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "invalid statement_timeout 'soon' in store URL (expected milliseconds, 1 to 86400000)");
	EQ_INT(durox_open("sqlite:", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "store URL has no path (expected sqlite:PATH)");
	EQ_INT(durox_open("sqlite:x.db?cache=shared", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_INT(durox_open("sqlite:/tmp", NULL, &dx, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "store '/tmp' is not a regular file");

	/* a text file, and a SQLite database that is not Duroxide's */
	char path[] = "/tmp/durox-test-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, "hello, not a database, just text padding to exceed a header.......................\n", 84) ==
	      84);
	close(fd);
	char url[600];
	snprintf(url, sizeof url, "sqlite:%s", path);
	EQ_INT(durox_open(url, NULL, &dx, err, sizeof err), DUROX_EUNSUPPORTED);
	char expect[600];
	snprintf(expect, sizeof expect, "'%s' is not a SQLite database, so not a Duroxide store", path);
	EQ_STR(err, expect);
	unlink(path);
	CHECK(durox_open(NULL, NULL, &dx, err, sizeof err) == DUROX_EINVALID);
	durox_close(NULL); /* accepts NULL */
}

TEST(empty_memory_store)
{
	durox *dx;
	char err[512];
	EQ_INT(durox_open("sqlite::memory:", NULL, &dx, err, sizeof err), DUROX_OK);
	durox_store_info in;
	durox_get_store_info(dx, &in);
	EQ_STR(in.provider, "sqlite");
	EQ_STR(in.schema_version, "create_schema");
	CHECK(in.has_custom_status && in.has_parent_instance);

	durox_instance_list *l;
	EQ_INT(durox_list_instances(dx, NULL, NULL, NULL, &l), DUROX_OK);
	EQ_INT(l->count, 0);
	durox_instance_list_free(l);

	durox_list_request req = {.want_total = 1};
	EQ_INT(durox_list_instances_paginated(dx, &req, &l), DUROX_OK);
	EQ_INT(l->count, 0);
	EQ_INT(l->total_count, 0);
	CHECK(l->next_page_token == NULL);
	durox_instance_list_free(l);

	durox_orchestration_status *st;
	EQ_INT(durox_get_orchestration_status(dx, "nope", &st), DUROX_OK);
	EQ_INT(st->status, DUROX_STATUS_NOT_FOUND);
	durox_orchestration_status_free(st);

	durox_instance_details *d = (durox_instance_details *)1;
	EQ_INT(durox_get_instance_details(dx, "nope", &d), DUROX_ENOTFOUND);
	CHECK(d == NULL);
	EQ_STR(durox_errmsg(dx), "instance 'nope' not found");

	durox_id_list *ids;
	EQ_INT(durox_list_executions(dx, "nope", &ids), DUROX_ENOTFOUND);
	durox_descriptor *desc;
	EQ_INT(durox_get_orchestration_descriptor(dx, "nope", &desc), DUROX_ENOTFOUND);
	durox_history *h;
	EQ_INT(durox_read_execution_history(dx, "nope", 0, &h), DUROX_ENOTFOUND);

	const char *q[] = {"a", "b", "a"};
	durox_status_list *sl;
	EQ_INT(durox_get_instances_status(dx, q, 3, &sl), DUROX_OK);
	EQ_INT(sl->count, 3);
	EQ_STR(sl->items[2].instance_id, "a");
	EQ_INT(sl->items[2].status, DUROX_STATUS_NOT_FOUND);
	durox_status_list_free(sl);

	durox_search_request sr = {.text = ""};
	EQ_INT(durox_search_instances(dx, &sr, &l), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "search text is empty");
	durox_close(dx);
}

TEST(filter_validation)
{
	durox_filter *f = durox_filter_new();
	durox_value v = {.type = DUROX_VAL_TEXT, .text = "running"};
	durox_expr *e = durox_expr_cmp(f, DUROX_FIELD_STATUS, DUROX_OP_EQ, &v);
	CHECK(e != NULL);
	EQ_INT(durox_filter_add(f, e), DUROX_OK);
	durox_value t = {.type = DUROX_VAL_TEXT, .text = "-24h"};
	EQ_INT(durox_filter_add(f, durox_expr_cmp(f, DUROX_FIELD_CREATED_AT, DUROX_OP_GT, &t)), DUROX_OK);
	durox_value vals[2] = {{.type = DUROX_VAL_TEXT, .text = "Order"}, {.type = DUROX_VAL_TEXT, .text = "it's"}};
	EQ_INT(durox_filter_add(f, durox_expr_not(f, durox_expr_in(f, DUROX_FIELD_ORCHESTRATION_NAME, vals, 2))),
	       DUROX_OK);
	/* status names are normalised; relative times keep their text; quotes are doubled */
	EQ_STR(durox_filter_describe(f), "(status = 'Running' AND created_at > '-24h' AND NOT orchestration_name IN "
	                                 "('Order', 'it''s'))");
	durox_filter_free(f);

	static const struct {
		int field, op;
		durox_value v;
		const char *msg;
	} bad[] = {
	        {DUROX_FIELD_STATUS,
	         DUROX_OP_EQ,
	         {.type = DUROX_VAL_TEXT, .text = "Cancelled"},
	         "unknown status 'Cancelled' (expected Running, Completed, Failed, ContinuedAsNew or Unknown; a "
	         "cancelled instance is Failed with failure_kind cancelled)"},
	        {DUROX_FIELD_FAILURE_KIND,
	         DUROX_OP_EQ,
	         {.type = DUROX_VAL_TEXT, .text = "oops"},
	         "unknown failure_kind 'oops' (expected application, cancelled, poison, nondeterminism, infrastructure "
	         "or "
	         "configuration)"},
	        {DUROX_FIELD_CREATED_AT,
	         DUROX_OP_GT,
	         {.type = DUROX_VAL_TEXT, .text = "soon"},
	         "invalid time 'soon' (expected ISO-8601 like '2026-01-31T12:00:00Z', milliseconds since the epoch, or "
	         "a "
	         "relative time like '-30m' or 'now-1h') for created_at"},
	        {DUROX_FIELD_EXECUTION_COUNT,
	         DUROX_OP_GE,
	         {.type = DUROX_VAL_TEXT, .text = "3x"},
	         "execution_count expects an integer, got '3x'"},
	        {DUROX_FIELD_ORCHESTRATION_NAME,
	         DUROX_OP_EQ,
	         {.type = DUROX_VAL_INT, .i = 3},
	         "orchestration_name expects text"},
	        {DUROX_FIELD_CREATED_AT,
	         DUROX_OP_LIKE,
	         {.type = DUROX_VAL_INT, .i = 3},
	         "created_at is not text, so it cannot be matched as a string"},
	        {DUROX_FIELD_TEXT,
	         DUROX_OP_EQ,
	         {.type = DUROX_VAL_TEXT, .text = "x"},
	         "text search supports only CONTAINS"},
	        {DUROX_FIELD_CREATED_AT,
	         DUROX_OP_LT,
	         {.type = DUROX_VAL_NULL},
	         "created_at cannot be compared with null except by = and !="},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		f = durox_filter_new();
		CHECK(durox_expr_cmp(f, bad[i].field, bad[i].op, &bad[i].v) == NULL);
		EQ_STR(durox_filter_error(f), bad[i].msg);
		EQ_INT(durox_filter_add(f, NULL), DUROX_EINVALID);
		durox_filter_free(f);
	}
	f = durox_filter_new();
	CHECK(durox_expr_in(f, DUROX_FIELD_STATUS, NULL, 0) == NULL);
	EQ_STR(durox_filter_error(f), "empty IN list for status");
	durox_filter_free(f);
}

TEST(page_tokens)
{
	durox *dx;
	char err[512];
	EQ_INT(durox_open("sqlite::memory:", NULL, &dx, err, sizeof err), DUROX_OK);
	durox_instance_list *l;
	durox_list_request req = {.page_token = "not-a-token!"};
	EQ_INT(durox_list_instances_paginated(dx, &req, &l), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "malformed page token");
	req.page_token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	EQ_INT(durox_list_instances_paginated(dx, &req, &l), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "malformed page token");
	req.page_token = NULL;
	req.order_by = 9;
	EQ_INT(durox_list_instances_paginated(dx, &req, &l), DUROX_EINVALID);
	durox_history_request hr;
	durox_history_request_init(&hr, "x");
	durox_history *h;
	EQ_INT(durox_get_execution_history_filtered(dx, &hr, &h), DUROX_ENOTFOUND);
	durox_config c;
	durox_get_config(dx, &c);
	EQ_INT(c.max_list_instances, 10000);
	EQ_INT(c.max_bulk_operations, 1000);
	c.max_list_instances = 0;
	EQ_INT(durox_set_config(dx, &c), DUROX_EINVALID);
	EQ_STR(durox_errmsg(dx), "max_list_instances must be at least 1");
	durox_close(dx);
}

TEST(names)
{
	EQ_STR(durox_status_name(DUROX_STATUS_CONTINUED_AS_NEW), "ContinuedAsNew");
	EQ_INT(durox_status_parse("completed"), DUROX_STATUS_COMPLETED);
	EQ_INT(durox_status_parse("Cancelled"), -1);
	EQ_STR(durox_failure_kind_name(DUROX_FAILURE_NONDETERMINISM), "nondeterminism");
	EQ_INT(durox_failure_kind_parse("canceled"), DUROX_FAILURE_CANCELLED);
	EQ_INT(durox_field_parse("name"), DUROX_FIELD_ORCHESTRATION_NAME);
	EQ_INT(durox_field_parse("nope"), -1);
	EQ_STR(durox_order_name(DUROX_ORDER_INSTANCE_ID), "InstanceId");
	EQ_INT(durox_order_parse("OrchestrationName"), DUROX_ORDER_ORCHESTRATION_NAME);
	EQ_STR(durox_code_name(DUROX_EBUSY), "BUSY");
	CHECK(durox_status_name(99) == NULL);
}
