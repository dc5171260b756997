/*
 * test_query.c - unit tests of the query language parser (src/engine/query.c): every
 * construct against the canonical text of the filter it builds, precedence and
 * associativity, keywords in any case, quoting, times resolved against a fixed now (exact
 * ms read from the tree), limits, the public entry points, and malformed queries with their
 * exact messages. Runs through the internal query_parse to fix "now".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durox.h"
#include "engine/query.h"
#include "store/provider.h"
#include "t.h"

/* 2026-01-01T00:00:00Z */
#define NOW 1767225600000LL

/* Canonical text of the parsed query, or "ERROR: <message>" (static buffer). */
static const char *canon(const char *q)
{
	static char out[16384];
	char err[512];
	durox_filter *f = durox_filter_new();
	int rc = query_parse(f, q, NOW, err, sizeof err);
	if (rc != DUROX_OK)
		snprintf(out, sizeof out, "ERROR: %s", err);
	else
		snprintf(out, sizeof out, "%s", durox_filter_describe(f));
	durox_filter_free(f);
	return out;
}

/* The message for a query that must fail with DUROX_EINVALID. */
static const char *error_of(const char *q)
{
	static char err[512];
	durox_filter *f = durox_filter_new();
	int rc = query_parse(f, q, NOW, err, sizeof err);
	if (rc != DUROX_EINVALID)
		snprintf(err, sizeof err, "(rc %d, %s)", rc, rc == DUROX_OK ? durox_filter_describe(f) : "");
	durox_filter_free(f);
	return err;
}

static const struct {
	const char *query, *canonical;
} constructs[] = {
        /* comparisons on every field, by proposal name and alias */
        {"status = 'Failed'", "status = 'Failed'"},
        {"status != 'Running'", "status != 'Running'"},
        {"status <> 'Running'", "status != 'Running'"},
        {"failure_kind = 'cancelled'", "failure_kind = 'cancelled'"},
        {"kind = 'POISON'", "failure_kind = 'poison'"},
        {"orchestration_name = 'Order'", "orchestration_name = 'Order'"},
        {"name = 'Order'", "orchestration_name = 'Order'"},
        {"version = '1.0.0'", "version = '1.0.0'"},
        {"instance_id = 'order-42'", "instance_id = 'order-42'"},
        {"id = 'order-42'", "instance_id = 'order-42'"},
        {"parent_instance = 'p-1'", "parent_instance = 'p-1'"},
        {"parent = 'p-1'", "parent_instance = 'p-1'"},
        {"created_at > 1767225600000", "created_at > 1767225600000"},
        {"updated_at >= '2026-01-31'", "updated_at >= '2026-01-31'"},
        {"completed_at < '2026-01-31T12:00:00Z'", "completed_at < '2026-01-31T12:00:00Z'"},
        {"custom_status <= 'x'", "custom_status <= 'x'"},
        {"execution_count >= 2", "execution_count >= 2"},
        {"execution_count < '3'", "execution_count < 3"},
        {"execution_count > -1", "execution_count > -1"},
        {"execution_count = +4", "execution_count = 4"},
        {"text CONTAINS 'inventory'", "text CONTAINS 'inventory'"},
        /* IN, NOT IN, BETWEEN, NOT BETWEEN */
        {"status IN ('failed', 'RUNNING')", "status IN ('Failed', 'Running')"},
        {"name NOT IN ('A','B')", "NOT orchestration_name IN ('A', 'B')"},
        {"name IN ('only')", "orchestration_name IN ('only')"},
        {"execution_count BETWEEN 2 AND 5", "execution_count BETWEEN 2 AND 5"},
        {"created_at NOT BETWEEN '2026-01-01' AND now()", "NOT created_at BETWEEN '2026-01-01' AND 'now()'"},
        /* string matching */
        {"id STARTS_WITH 'order-'", "instance_id STARTS_WITH 'order-'"},
        {"id NOT STARTS_WITH 'tmp'", "NOT instance_id STARTS_WITH 'tmp'"},
        {"name LIKE 'Ord%'", "orchestration_name LIKE 'Ord%'"},
        {"name NOT LIKE '%\\_v_'", "NOT orchestration_name LIKE '%\\_v_'"},
        {"custom_status CONTAINS 'review'", "custom_status CONTAINS 'review'"},
        {"text NOT CONTAINS 'x'", "NOT text CONTAINS 'x'"},
        /* NULL tests and has_parent */
        {"parent IS NULL", "parent_instance IS NULL"},
        {"completed_at IS NOT NULL", "completed_at IS NOT NULL"},
        {"version = NULL", "version IS NULL"},
        {"version != NULL", "version IS NOT NULL"},
        {"has_parent = true", "parent_instance IS NOT NULL"},
        {"has_parent = false", "parent_instance IS NULL"},
        {"has_parent != true", "parent_instance IS NULL"},
        {"has_parent <> false", "parent_instance IS NOT NULL"},
        /* times: text is kept as written (canonical for now()) */
        {"created_at > now()", "created_at > 'now()'"},
        {"created_at > now() - 1h", "created_at > 'now() - 1h'"},
        {"created_at > now()-90m", "created_at > 'now() - 90m'"},
        {"updated_at < now() + 1h30m", "updated_at < 'now() + 1h30m'"},
        {"created_at > -30m", "created_at > '-30m'"},
        {"created_at > +2d", "created_at > '+2d'"},
        {"created_at > '-30m'", "created_at > '-30m'"},
        {"created_at > 'now-1h'", "created_at > 'now-1h'"},
        {"created_at IN ('2026-01-01', 0)", "created_at IN ('2026-01-01', 0)"},
        /* boolean structure */
        {"NOT status = 'Failed'", "NOT status = 'Failed'"},
        {"NOT NOT status = 'Failed'", "NOT NOT status = 'Failed'"},
        {"(status = 'Failed')", "status = 'Failed'"},
        {"((((status = 'Failed'))))", "status = 'Failed'"},
        {"NOT (status = 'Failed' OR status = 'Running')", "NOT (status = 'Failed' OR status = 'Running')"},
};

TEST(query_constructs)
{
	for (size_t i = 0; i < sizeof constructs / sizeof constructs[0]; i++) {
		EQ_STR(canon(constructs[i].query), constructs[i].canonical);
		/* the canonical text parses back to itself */
		char again[4096];
		snprintf(again, sizeof again, "%s", constructs[i].canonical);
		EQ_STR(canon(again), constructs[i].canonical);
	}
}

TEST(query_precedence)
{
	/* NOT > AND > OR; AND and OR associate to the left */
	EQ_STR(canon("id = 'a' OR id = 'b' AND id = 'c'"),
	       "(instance_id = 'a' OR (instance_id = 'b' AND instance_id = 'c'))");
	EQ_STR(canon("id = 'a' AND id = 'b' OR id = 'c'"),
	       "((instance_id = 'a' AND instance_id = 'b') OR instance_id = 'c')");
	EQ_STR(canon("NOT id = 'a' AND id = 'b'"), "(NOT instance_id = 'a' AND instance_id = 'b')");
	EQ_STR(canon("NOT id = 'a' OR NOT id = 'b' AND id = 'c'"),
	       "(NOT instance_id = 'a' OR (NOT instance_id = 'b' AND instance_id = 'c'))");
	EQ_STR(canon("(id = 'a' OR id = 'b') AND id = 'c'"),
	       "((instance_id = 'a' OR instance_id = 'b') AND instance_id = 'c')");
	EQ_STR(canon("id = 'a' AND (id = 'b' AND id = 'c')"),
	       "(instance_id = 'a' AND (instance_id = 'b' AND instance_id = 'c'))");
	EQ_STR(canon("(id = 'a' AND id = 'b') AND id = 'c'"),
	       "(instance_id = 'a' AND instance_id = 'b' AND instance_id = 'c')");
	EQ_STR(canon("id = 'a' OR id = 'b' OR id = 'c' OR id = 'd'"),
	       "(instance_id = 'a' OR instance_id = 'b' OR instance_id = 'c' OR instance_id = 'd')");
	/* BETWEEN's AND is not the boolean AND */
	EQ_STR(canon("execution_count BETWEEN 1 AND 2 AND status = 'Running'"),
	       "(execution_count BETWEEN 1 AND 2 AND status = 'Running')");
	EQ_STR(canon("NOT execution_count BETWEEN 1 AND 2 OR status = 'Running'"),
	       "(NOT execution_count BETWEEN 1 AND 2 OR status = 'Running')");

	/* the tree itself: left-nested chains */
	durox_filter *f = durox_filter_new();
	char err[512];
	EQ_INT(query_parse(f, "id = 'a' AND id = 'b' AND id = 'c'", NOW, err, sizeof err), DUROX_OK);
	CHECK(f->root->kind == EXPR_AND && f->root->a->kind == EXPR_AND && f->root->b->kind == EXPR_CMP);
	EQ_STR(f->root->b->vals[0].text, "c");
	EQ_STR(f->root->a->a->vals[0].text, "a");
	durox_filter_free(f);
	f = durox_filter_new();
	EQ_INT(query_parse(f, "NOT id = 'a' OR id = 'b'", NOW, err, sizeof err), DUROX_OK);
	CHECK(f->root->kind == EXPR_OR && f->root->a->kind == EXPR_NOT && f->root->a->a->kind == EXPR_CMP);
	durox_filter_free(f);
}

TEST(query_keywords_any_case)
{
	EQ_STR(canon("STATUS in ('failed') and NAME not like 'x%' or Id Starts_With 'a' AND not text contains 'b'"),
	       "((status IN ('Failed') AND NOT orchestration_name LIKE 'x%') OR (instance_id STARTS_WITH 'a' AND NOT "
	       "text CONTAINS 'b'))");
	EQ_STR(canon("parent is not null AND version Is Null"), "(parent_instance IS NOT NULL AND version IS NULL)");
	EQ_STR(canon("execution_count between 1 And 3"), "execution_count BETWEEN 1 AND 3");
	EQ_STR(canon("HAS_PARENT = TRUE"), "parent_instance IS NOT NULL");
	EQ_STR(canon("created_at > NOW() - 1h"), "created_at > 'now() - 1h'");
	EQ_STR(canon("version = null"), "version IS NULL");
}

TEST(query_quoting)
{
	EQ_STR(canon("name = 'it''s'"), "orchestration_name = 'it''s'");
	EQ_STR(canon("name = \"it's\""), "orchestration_name = 'it''s'");
	EQ_STR(canon("name = \"say \"\"hi\"\"\""), "orchestration_name = 'say \"hi\"'");
	EQ_STR(canon("name = ''''"), "orchestration_name = ''''");
	EQ_STR(canon("name = ''"), "orchestration_name = ''");
	EQ_STR(canon("custom_status = '{\"phase\":\"review\"}'"), "custom_status = '{\"phase\":\"review\"}'");
	/* backslash is an ordinary character in strings (LIKE gives it its meaning) */
	EQ_STR(canon("name = 'a\\b'"), "orchestration_name = 'a\\b'");
	EQ_STR(canon("id = 'ünï-日本-✓'"), "instance_id = 'ünï-日本-✓'");
	/* whitespace of every kind separates tokens; none is needed around operators */
	EQ_STR(canon("\tname\n=\r'x'\fAND\vid='y'"), "(orchestration_name = 'x' AND instance_id = 'y')");
	EQ_STR(canon("status='Failed'AND(id='a'OR id='b')"),
	       "(status = 'Failed' AND (instance_id = 'a' OR instance_id = 'b'))");
	/* the decoded value reaches the tree unchanged */
	durox_filter *f = durox_filter_new();
	char err[512];
	EQ_INT(query_parse(f, "name = 'a''b\"c'", NOW, err, sizeof err), DUROX_OK);
	EQ_STR(f->root->vals[0].text, "a'b\"c");
	durox_filter_free(f);
}

/* The value of the single comparison in q (its ms) and its kept text. */
static int64_t time_of(const char *q, const char **text)
{
	static char keep[64];
	durox_filter *f = durox_filter_new();
	char err[512];
	int64_t v = -1;
	*text = NULL;
	if (query_parse(f, q, NOW, err, sizeof err) == DUROX_OK && f->root->kind == EXPR_CMP) {
		v = f->root->vals[0].i;
		CHECK(f->root->vals[0].type == DUROX_VAL_INT);
		if (f->root->vals[0].text != NULL) {
			snprintf(keep, sizeof keep, "%s", f->root->vals[0].text);
			*text = keep;
		}
	} else {
		fprintf(stderr, "%s: %s\n", q, err);
	}
	durox_filter_free(f);
	return v;
}

TEST(query_times)
{
	const char *t;
	EQ_INT(time_of("created_at > now()", &t), NOW);
	EQ_STR(t, "now()");
	EQ_INT(time_of("created_at > now() - 1h", &t), NOW - 3600000);
	EQ_STR(t, "now() - 1h");
	EQ_INT(time_of("created_at > now() + 30m", &t), NOW + 1800000);
	EQ_INT(time_of("created_at > now() - 1h30m", &t), NOW - 5400000);
	EQ_INT(time_of("created_at > now() - 500ms", &t), NOW - 500);
	EQ_INT(time_of("created_at > now() - 2d", &t), NOW - 2 * 86400000LL);
	EQ_INT(time_of("created_at > now() - 1w", &t), NOW - 7 * 86400000LL);
	EQ_INT(time_of("created_at > -30m", &t), NOW - 1800000);
	EQ_STR(t, "-30m");
	EQ_INT(time_of("created_at > '-30m'", &t), NOW - 1800000);
	EQ_STR(t, "-30m");
	EQ_INT(time_of("created_at > '+2h'", &t), NOW + 7200000);
	EQ_INT(time_of("created_at > 'now() - 90s'", &t), NOW - 90000);
	EQ_INT(time_of("created_at > 'now'", &t), NOW);
	/* absolute times */
	EQ_INT(time_of("created_at > '2026-01-31T12:00:00Z'", &t), 1769860800000LL);
	EQ_STR(t, "2026-01-31T12:00:00Z");
	EQ_INT(time_of("created_at > '2026-01-31'", &t), 1769817600000LL);
	EQ_INT(time_of("created_at > '2026-01-31 12:00:00.250'", &t), 1769860800250LL);
	EQ_INT(time_of("created_at > '2026-01-31T13:00:00+01:00'", &t), 1769860800000LL);
	EQ_INT(time_of("created_at > '1769860800000'", &t), 1769860800000LL);
	EQ_INT(time_of("created_at > 1769860800000", &t), 1769860800000LL);
	CHECK(t == NULL); /* an integer is described as itself */
	EQ_INT(time_of("created_at > -5", &t), -5);
	/* the extremes of int64 */
	EQ_INT(time_of("created_at > -9223372036854775808", &t), INT64_MIN);
	EQ_INT(time_of("created_at > 9223372036854775807", &t), INT64_MAX);
	EQ_STR(canon("execution_count > -9223372036854775808"), "execution_count > -9223372036854775808");
	/* BETWEEN bounds */
	durox_filter *f = durox_filter_new();
	char err[512];
	EQ_INT(query_parse(f, "updated_at BETWEEN now() - 1d AND '-1h'", NOW, err, sizeof err), DUROX_OK);
	EQ_INT(f->root->vals[0].i, NOW - 86400000LL);
	EQ_INT(f->root->vals[1].i, NOW - 3600000LL);
	durox_filter_free(f);
}

static const struct {
	const char *query, *message;
} errors[] = {
        {"", "query error at position 1: expected a condition but found end of query"},
        {"   ", "query error at position 4: expected a condition but found end of query"},
        {"status =", "query error at position 9: expected a value after '=' but found end of query"},
        {"status = 'Failed' AND name =",
         "query error at position 29: expected a value after '=' but found end of query"},
        {"colour = 'red'",
         "query error at position 1: unknown field 'colour' (fields: status, failure_kind, orchestration_name (or "
         "name), "
         "version, instance_id (or id), parent_instance (or parent), has_parent, created_at, updated_at, completed_at, "
         "custom_status, execution_count, text)"},
        {"name = 'Order", "query error at position 14: unterminated string starting at position 8"},
        {"name = \"Order", "query error at position 14: unterminated string starting at position 8"},
        {"name = 'it''s", "query error at position 14: unterminated string starting at position 8"},
        {"status = Failed", "query error at position 10: expected a value after '=' but found 'Failed' (text values "
                            "are quoted: 'Failed')"},
        {"status", "query error at position 7: expected an operator after 'status' (=, !=, <, <=, >, >=, IN, BETWEEN, "
                   "STARTS_WITH, LIKE, CONTAINS or IS NULL) but found end of query"},
        {"status 'Failed'",
         "query error at position 8: expected an operator after 'status' (=, !=, <, <=, >, >=, IN, BETWEEN, "
         "STARTS_WITH, LIKE, CONTAINS or IS NULL) but found string 'Failed'"},
        {"status == 'Failed'", "query error at position 9: expected a value after '=' but found '='"},
        {"status ! 'Failed'", "query error at position 8: unexpected character '!' (did you mean '!='?)"},
        {"status = 'Failed' && name = 'x'", "query error at position 19: unexpected character '&' (use AND)"},
        {"status = 'Failed' || name = 'x'", "query error at position 19: unexpected character '|' (use OR)"},
        {"name = 'x' ; drop table instances", "query error at position 12: unexpected character ';'"},
        {"name = 'x' AND", "query error at position 15: expected a condition after AND but found end of query"},
        {"name = 'x' OR", "query error at position 14: expected a condition after OR but found end of query"},
        {"name = 'x' AND AND id = 'y'", "query error at position 16: expected a condition after AND but found 'AND'"},
        {"NOT", "query error at position 4: expected a condition after NOT but found end of query"},
        {"()", "query error at position 2: expected a condition after '(' but found ')'"},
        {"(name = 'x'",
         "query error at position 12: expected AND, OR or ')' (closing the '(' at position 1) but found end of query"},
        {"(name = 'x' id = 'y')",
         "query error at position 13: expected AND, OR or ')' (closing the '(' at position 1) but found 'id'"},
        {"name = 'x')", "query error at position 11: expected AND, OR or end of query but found ')'"},
        {"name = 'x' id = 'y'", "query error at position 12: expected AND, OR or end of query but found 'id'"},
        {"'Failed' = status", "query error at position 1: expected a condition but found string 'Failed'"},
        {"status IN 'Failed'", "query error at position 11: expected '(' after IN but found string 'Failed'"},
        {"status IN ()", "query error at position 12: expected a value after '(' but found ')'"},
        {"status IN ('Failed',)", "query error at position 21: expected a value after ',' but found ')'"},
        {"status IN ('Failed' 'Running')", "query error at position 21: expected ',' or ')' in the IN list opened at "
                                           "position 11 but found string 'Running'"},
        {"status IN ('Failed'",
         "query error at position 20: expected ',' or ')' in the IN list opened at position 11 but found end of query"},
        {"version IN ('1', NULL)", "query error at position 18: NULL is not allowed in an IN list (use IS NULL)"},
        {"execution_count BETWEEN 1 OR 2",
         "query error at position 27: expected AND after the first value of BETWEEN but found 'OR'"},
        {"execution_count BETWEEN 1",
         "query error at position 26: expected AND after the first value of BETWEEN but found end of query"},
        {"execution_count BETWEEN NULL AND 2", "query error at position 25: NULL is not allowed in BETWEEN"},
        {"name LIKE Order%", "query error at position 11: expected a quoted string after LIKE but found 'Order'"},
        {"name STARTS_WITH 5",
         "query error at position 18: expected a quoted string after STARTS_WITH but found number 5"},
        {"created_at LIKE '2026%'", "query error at position 12: LIKE needs a text field, but created_at is a time"},
        {"execution_count CONTAINS '1'",
         "query error at position 17: CONTAINS needs a text field, but execution_count is an integer"},
        {"status LIKE 'Fail%'",
         "query error at position 8: status is matched by its exact name: use =, != or IN, not LIKE"},
        {"failure_kind STARTS_WITH 'can'",
         "query error at position 14: failure_kind is matched by its exact name: use =, != or IN, not STARTS_WITH"},
        {"text = 'x'",
         "query error at position 6: the text field supports only CONTAINS (text CONTAINS 'word'), not '='"},
        {"text IN ('x')",
         "query error at position 6: the text field supports only CONTAINS (text CONTAINS 'word'), not IN"},
        {"text IS NULL",
         "query error at position 6: the text field supports only CONTAINS (text CONTAINS 'word'), not IS"},
        {"name IS 'x'", "query error at position 9: expected NULL or NOT NULL after IS but found string 'x'"},
        {"name IS NOT 'x'", "query error at position 13: expected NULL after IS NOT but found string 'x'"},
        {"name NOT = 'x'",
         "query error at position 10: expected IN, BETWEEN, LIKE, STARTS_WITH or CONTAINS after NOT but found '='"},
        {"version < NULL",
         "query error at position 11: NULL can only be compared with = or != (or use IS NULL, IS NOT NULL)"},
        {"status = 'Cancelled'", "query error at position 10: unknown status 'Cancelled' (expected Running, Completed, "
                                 "Failed, ContinuedAsNew or "
                                 "Unknown; a cancelled instance is Failed with failure_kind 'cancelled')"},
        {"status IN ('Failed', 'Runing')",
         "query error at position 22: unknown status 'Runing' (expected Running, Completed, Failed, ContinuedAsNew or "
         "Unknown; a cancelled instance is Failed with failure_kind 'cancelled')"},
        {"failure_kind = 'oops'", "query error at position 16: unknown failure_kind 'oops' (expected application, "
                                  "cancelled, poison, nondeterminism, "
                                  "infrastructure or configuration)"},
        {"name = 42", "query error at position 8: orchestration_name is text, so the value must be quoted: '42'"},
        {"id = -7", "query error at position 6: instance_id is text, so the value must be quoted: '-7'"},
        {"execution_count = 'many'",
         "query error at position 19: execution_count expects an integer but found string 'many'"},
        {"execution_count = '99999999999999999999'",
         "query error at position 19: execution_count expects an integer but found string '99999999999999999999'"},
        {"execution_count > 9223372036854775808",
         "query error at position 19: number 9223372036854775808 is out of range"},
        {"execution_count > 99999999999999999999",
         "query error at position 19: number 99999999999999999999 is out of range"},
        {"execution_count > 1.5", "query error at position 19: invalid number or duration '1.5' (expected an integer, "
                                  "or a duration like 30m, 1h30m or "
                                  "500ms)"},
        {"created_at > 2026-01-31",
         "query error at position 14: a timestamp must be quoted, like '2026-01-31' or '2026-01-31T12:00:00Z'"},
        {"created_at > 'yesterday'",
         "query error at position 14: invalid time 'yesterday' for created_at (expected an ISO-8601 time like "
         "'2026-01-31T12:00:00Z' or '2026-01-31', milliseconds since the epoch, or a relative time like '-30m')"},
        {"created_at > '2026-02-30'",
         "query error at position 14: invalid time '2026-02-30' for created_at (expected an ISO-8601 time like "
         "'2026-01-31T12:00:00Z' or '2026-01-31', milliseconds since the epoch, or a relative time like '-30m')"},
        {"created_at > 30m",
         "query error at position 14: duration 30m is not a point in time (write now() - 30m, or -30m)"},
        {"created_at > now", "query error at position 17: expected '(' after now but found end of query"},
        {"created_at > now(", "query error at position 18: expected ')' after 'now(' but found end of query"},
        {"created_at > now() - 5",
         "query error at position 22: expected a duration after '-' (like 30m, 1h or 2d) but found number 5"},
        {"created_at > now() -",
         "query error at position 21: expected a duration after '-' (like 30m, 1h or 2d) but found end of query"},
        {"created_at > - 'x'",
         "query error at position 16: expected a number or a duration after '-' but found string 'x'"},
        {"created_at > now() + 15250284450w", "query error at position 14: time now() + 15250284450w is out of range"},
        {"created_at > now() + 99999999999999w", "query error at position 22: invalid number or duration "
                                                 "'99999999999999w' (expected an integer, or a duration like "
                                                 "30m, 1h30m or 500ms)"},
        {"created_at > '+15250284450w'",
         "query error at position 14: invalid time '+15250284450w' for created_at (expected an ISO-8601 time like "
         "'2026-01-31T12:00:00Z' or '2026-01-31', milliseconds since the epoch, or a relative time like '-30m')"},
        {"execution_count > now()", "query error at position 19: execution_count is an integer, but now() is a time"},
        {"name = now() - 1h", "query error at position 8: orchestration_name is text, but now() - 1h is a time"},
        {"execution_count > -30m", "query error at position 19: execution_count is an integer, but -30m is a time"},
        {"execution_count > 5x",
         "query error at position 19: invalid number or duration '5x' (expected an integer, or a duration "
         "like 30m, 1h30m or 500ms)"},
        {"name = true", "query error at position 8: true and false are values of has_parent only"},
        {"has_parent = 'yes'", "query error at position 14: expected true or false after '=' but found string 'yes'"},
        {"has_parent IS NULL",
         "query error at position 12: has_parent takes = or != and true or false (has_parent = true) but "
         "found 'IS'"},
        {"name = 'x' AND éa = 'y'", "query error at position 16: unexpected byte 0xC3 (text values must be quoted)"},
        {"name = 'x'\x01", "query error at position 11: unexpected byte 0x01 (text values must be quoted)"},
        {"name = 'a very long value that goes on and on and on' status",
         "query error at position 55: expected AND, OR or end of query but found 'status'"},
        {"name IN ('a') AND name = 'line\nbreak' x",
         "query error at position 39: expected AND, OR or end of query but found 'x'"},
        {"name = 'abcdefghijklmnopqrstuvwxyz0123456789' name",
         "query error at position 47: expected AND, OR or end of query but found 'name'"},
        {"custom_status = 'x' OR 'abcdefghijklmnopqrstuvwxyz0123456789'",
         "query error at position 24: expected a condition after OR but found string "
         "'abcdefghijklmnopqrstuvwxyz01234..."},
        {"name = 'x' OR 'multi\nline'",
         "query error at position 15: expected a condition after OR but found string 'multi?line'"},
        {"name = 'x' AND status = 'Failed' OR",
         "query error at position 36: expected a condition after OR but found end of query"},
};

TEST(query_errors)
{
	size_t n = sizeof errors / sizeof errors[0];
	CHECK(n >= 40);
	for (size_t i = 0; i < n; i++) {
		EQ_STR(error_of(errors[i].query), errors[i].message);
		CHECK(strchr(error_of(errors[i].query), '\n') == NULL);
	}
}

TEST(query_limits)
{
	char *q = malloc(QUERY_MAX_LEN + 64);
	/* length: exactly the limit is fine, one more byte is not */
	memset(q, ' ', QUERY_MAX_LEN);
	memcpy(q, "id = 'x'", 8);
	q[QUERY_MAX_LEN] = '\0';
	EQ_STR(canon(q), "instance_id = 'x'");
	q[QUERY_MAX_LEN] = ' ';
	q[QUERY_MAX_LEN + 1] = '\0';
	EQ_STR(error_of(q), "query error at position 8193: query is longer than 8192 bytes");

	/* conditions */
	size_t len = 0;
	for (int i = 0; i < QUERY_MAX_CONDITIONS; i++)
		len += (size_t)sprintf(q + len, "%sid = '%d'", i ? " OR " : "", i);
	CHECK(strncmp(canon(q), "(instance_id = '0' OR instance_id = '1' OR ", 43) == 0);
	sprintf(q + len, " OR id = 'x'");
	char expect[128];
	snprintf(expect, sizeof expect, "query error at position %zu: more than 256 conditions", len + 5);
	EQ_STR(error_of(q), expect);

	/* NOT levels: 16 are fine, the 17th is refused where it stands */
	len = 0;
	for (int i = 0; i < QUERY_MAX_LEVELS; i++)
		len += (size_t)sprintf(q + len, "NOT ");
	sprintf(q + len, "id = 'x'");
	CHECK(strncmp(canon(q), "NOT NOT ", 8) == 0);
	memmove(q + 4, q, strlen(q) + 1);
	memcpy(q, "NOT ", 4);
	EQ_STR(error_of(q),
	       "query error at position 65: conditions nest more than 16 levels deep (each NOT, and each AND or "
	       "OR group inside another, is a level)");
	/* x NOT IN counts as a level too */
	len = 0;
	for (int i = 0; i < QUERY_MAX_LEVELS; i++)
		len += (size_t)sprintf(q + len, "NOT ");
	sprintf(q + len, "id NOT IN ('x')");
	EQ_STR(error_of(q),
	       "query error at position 1: conditions nest more than 16 levels deep (each NOT, and each AND or "
	       "OR group inside another, is a level)");

	/* alternating groups: 16 levels fine, 17 refused at the operator that makes the 17th */
	strcpy(q, "id = 'x'");
	for (int i = 1; i <= QUERY_MAX_LEVELS; i++) {
		char *t = malloc(strlen(q) + 64);
		sprintf(t, "(id = 'y' %s %s)", i % 2 ? "OR" : "AND", q);
		strcpy(q, t);
		free(t);
	}
	const char *c = canon(q);
	CHECK(strncmp(c, "(instance_id = 'y' AND (instance_id = 'y' OR (", 46) == 0);
	{
		/* a canonical text at the limit parses back to itself */
		char *again = strdup(c);
		EQ_STR(canon(again), again);
		free(again);
	}
	memmove(q + 15, q, strlen(q) + 1);
	memcpy(q, "(id = 'y' OR  ", 14);
	q[14] = ' ';
	strcat(q, ")");
	EQ_STR(error_of(q),
	       "query error at position 11: conditions nest more than 16 levels deep (each NOT, and each AND or "
	       "OR group inside another, is a level)");
	/* a left-nested chain of the same operator is one level however long it is */
	strcpy(q, "id = 'x'");
	for (int i = 0; i < 40; i++) {
		char *t = malloc(strlen(q) + 64);
		sprintf(t, "(%s AND id = 'y')", q);
		strcpy(q, t);
		free(t);
	}
	CHECK(strncmp(canon(q), "(instance_id = 'x' AND instance_id = 'y' AND ", 45) == 0);

	/* parentheses: 64 redundant ones are fine, 65 are not */
	len = 0;
	for (int i = 0; i < QUERY_MAX_PARENS; i++)
		q[len++] = '(';
	len += (size_t)sprintf(q + len, "id = 'x'");
	for (int i = 0; i < QUERY_MAX_PARENS; i++)
		q[len++] = ')';
	q[len] = '\0';
	EQ_STR(canon(q), "instance_id = 'x'");
	memmove(q + 1, q, len + 1);
	q[0] = '(';
	strcat(q, ")");
	EQ_STR(error_of(q), "query error at position 65: parentheses nest more than 64 deep");
	/* thousands of open parentheses do not recurse: the first over the limit stops the parse */
	memset(q, '(', QUERY_MAX_LEN);
	q[QUERY_MAX_LEN] = '\0';
	EQ_STR(error_of(q), "query error at position 65: parentheses nest more than 64 deep");
	memset(q, '(', QUERY_MAX_LEN);
	for (size_t i = 1; i < QUERY_MAX_LEN; i += 4)
		memcpy(q + i, "NOT ", 4);
	q[QUERY_MAX_LEN] = '\0';
	EQ_STR(error_of(q),
	       "query error at position 66: conditions nest more than 16 levels deep (each NOT, and each AND or "
	       "OR group inside another, is a level)");

	/* IN lists: 500 values fine, 501 not */
	len = (size_t)sprintf(q, "id IN (");
	for (int i = 0; i < QUERY_MAX_IN; i++)
		len += (size_t)sprintf(q + len, "%s'%d'", i ? "," : "", i);
	strcpy(q + len, ")");
	CHECK(strncmp(canon(q), "instance_id IN ('0', '1', '2', ", 31) == 0);
	sprintf(q + len, ",'x')");
	snprintf(expect, sizeof expect, "query error at position %zu: more than 500 values in the IN list", len + 2);
	EQ_STR(error_of(q), expect);
	free(q);
}

TEST(query_public_api)
{
	char err[512];
	durox_filter *f = (durox_filter *)1;
	EQ_INT(durox_filter_parse("status = 'Failed' AND name STARTS_WITH 'Ord'", &f, err, sizeof err), DUROX_OK);
	CHECK(f != NULL);
	EQ_STR(err, "");
	EQ_STR(durox_filter_describe(f), "(status = 'Failed' AND orchestration_name STARTS_WITH 'Ord')");
	/* the same filter built with the node constructors has the same canonical text */
	durox_filter *g = durox_filter_new();
	durox_value failed = {.type = DUROX_VAL_TEXT, .text = "failed"}, ord = {.type = DUROX_VAL_TEXT, .text = "Ord"};
	EQ_INT(durox_filter_add(g, durox_expr_cmp(g, DUROX_FIELD_STATUS, DUROX_OP_EQ, &failed)), DUROX_OK);
	EQ_INT(durox_filter_add(g, durox_expr_cmp(g, DUROX_FIELD_ORCHESTRATION_NAME, DUROX_OP_PREFIX, &ord)), DUROX_OK);
	EQ_STR(durox_filter_describe(g), durox_filter_describe(f));
	/* add_query ANDs after what the filter holds */
	EQ_INT(durox_filter_add_query(g, "id = 'a' OR id = 'b'", err, sizeof err), DUROX_OK);
	EQ_STR(durox_filter_describe(g), "(status = 'Failed' AND orchestration_name STARTS_WITH 'Ord' AND (instance_id "
	                                 "= 'a' OR instance_id = 'b'))");
	/* a failed add_query leaves the filter as it was */
	EQ_INT(durox_filter_add_query(g, "id = 'c' AND status = 'Nope'", err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "query error at position 23: unknown status 'Nope' (expected Running, Completed, Failed, "
	            "ContinuedAsNew or "
	            "Unknown; a cancelled instance is Failed with failure_kind 'cancelled')");
	EQ_STR(durox_filter_describe(g), "(status = 'Failed' AND orchestration_name STARTS_WITH 'Ord' AND (instance_id "
	                                 "= 'a' OR instance_id = 'b'))");
	EQ_STR(durox_filter_error(g), "");
	durox_filter_free(g);
	durox_filter_free(f);

	f = (durox_filter *)1;
	EQ_INT(durox_filter_parse("status =", &f, err, sizeof err), DUROX_EINVALID);
	CHECK(f == NULL);
	EQ_INT(durox_filter_parse(NULL, &f, err, sizeof err), DUROX_EINVALID);
	EQ_STR(err, "query error at position 1: no query text");
	CHECK(f == NULL);
	/* a short buffer gets a truncated message; no buffer is fine */
	char small[20];
	EQ_INT(durox_filter_parse("status =", &f, small, sizeof small), DUROX_EINVALID);
	EQ_STR(small, "query error at posi");
	EQ_INT(durox_filter_parse("status =", &f, NULL, 0), DUROX_EINVALID);
	EQ_INT(durox_filter_parse("status = 'Failed'", NULL, err, sizeof err), DUROX_EINVALID);

	/* a relative time resolves against the wall clock in the public entry point */
	EQ_INT(durox_filter_parse("created_at > now() - 1h", &f, err, sizeof err), DUROX_OK);
	int64_t before = f->root->vals[0].i;
	CHECK(before > NOW - 3600000 && before < 4102444800000LL); /* after 2026, before 2100 */
	durox_filter_free(f);
}

TEST(query_roundtrip)
{
	/* a mixed query: canonical text -> parse -> the same canonical text */
	const char *q = "NOT (status IN ('Failed','Running') OR name LIKE 'a\\%%' AND has_parent = false) AND "
	                "created_at BETWEEN '2026-01-01' AND now() - 1h OR NOT NOT execution_count >= 2 AND "
	                "text CONTAINS 'it''s' AND id NOT STARTS_WITH \"tmp\" AND completed_at IS NOT NULL";
	char first[16384];
	snprintf(first, sizeof first, "%s", canon(q));
	EQ_STR(first,
	       "((NOT (status IN ('Failed', 'Running') OR (orchestration_name LIKE 'a\\%%' AND parent_instance "
	       "IS NULL)) AND created_at BETWEEN '2026-01-01' AND 'now() - 1h') OR (NOT NOT execution_count >= 2 "
	       "AND text CONTAINS 'it''s' AND NOT instance_id STARTS_WITH 'tmp' AND completed_at IS NOT NULL))");
	EQ_STR(canon(first), first);
}
