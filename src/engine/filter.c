/*
 * filter.c - construction, validation and canonical text of instance filters.
 * A filter is an AND/OR/NOT tree of field tests (provider.h); values are validated and
 * normalised here (status names, failure kinds, times) so providers only compile.
 * Used by the binding's Lua-table filters and by the query language parser (query.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "util/buf.h"
#include "util/timeutil.h"

#define MAX_IN_VALUES 500

durox_filter *durox_filter_new(void)
{
	durox_filter *f = calloc(1, sizeof *f);
	if (f != NULL)
		arena_init(&f->mem);
	return f;
}

void durox_filter_free(durox_filter *f)
{
	if (f == NULL)
		return;
	arena_release(&f->mem);
	free(f->desc);
	free(f);
}

const char *durox_filter_error(const durox_filter *f) { return f->err; }

static durox_expr *ferr(durox_filter *f, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;

/* Records the first construction error; returns NULL so constructors can `return ferr(...)`. */
static durox_expr *ferr(durox_filter *f, const char *fmt, ...)
{
	if (f->err[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(f->err, sizeof f->err, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

static durox_expr *node(durox_filter *f, expr_kind kind)
{
	durox_expr *e = arena_calloc(&f->mem, 1, sizeof *e);
	if (e == NULL)
		return ferr(f, "out of memory");
	e->kind = kind;
	return e;
}

/* Validates v for field and copies it into *out (normalising). */
static int take_value(durox_filter *f, int field, const durox_value *v, durox_value *out)
{
	const char *fname = durox_field_name(field);
	*out = *v;
	if (v->type == DUROX_VAL_NULL)
		return 0;
	field_type ft = durox_field_type(field);
	if (ft == FT_TIME) {
		if (v->type == DUROX_VAL_TEXT) {
			char msg[200];
			int64_t ms;
			if (time_parse_user(v->text, time_now_ms(), &ms, msg, sizeof msg) != 0) {
				ferr(f, "%s for %s", msg, fname);
				return -1;
			}
			/* keep the text as given: a relative time ('-24h') describes the same filter
			 * on every call, so page tokens stay valid while 'now' moves on */
			out->type = DUROX_VAL_INT;
			out->i = ms;
			out->text = arena_strdup(&f->mem, v->text);
			if (out->text == NULL) {
				ferr(f, "out of memory");
				return -1;
			}
		}
		return 0;
	}
	if (ft == FT_INT) {
		if (v->type == DUROX_VAL_TEXT) {
			char *end;
			long long x = strtoll(v->text, &end, 10);
			if (*v->text == '\0' || *end != '\0') {
				ferr(f, "%s expects an integer, got '%s'", fname, v->text);
				return -1;
			}
			out->type = DUROX_VAL_INT;
			out->i = x;
			out->text = NULL;
		}
		return 0;
	}
	if (v->type != DUROX_VAL_TEXT) {
		ferr(f, "%s expects text", fname);
		return -1;
	}
	const char *t = v->text;
	if (field == DUROX_FIELD_STATUS) {
		int s = durox_status_parse(t);
		if (s < 0) {
			ferr(f,
			     "unknown status '%s' (expected Running, Completed, Failed, ContinuedAsNew or Unknown; a "
			     "cancelled instance is Failed with failure_kind cancelled)",
			     t);
			return -1;
		}
		t = durox_status_name(s);
	} else if (field == DUROX_FIELD_FAILURE_KIND) {
		int k = durox_failure_kind_parse(t);
		if (k < 0) {
			ferr(f,
			     "unknown failure_kind '%s' (expected application, cancelled, poison, nondeterminism, "
			     "infrastructure or configuration)",
			     t);
			return -1;
		}
		t = durox_failure_kind_name(k);
	}
	out->text = arena_strdup(&f->mem, t);
	if (out->text == NULL) {
		ferr(f, "out of memory");
		return -1;
	}
	return 0;
}

static int check_field(durox_filter *f, int field)
{
	if (field < 0 || field >= DUROX_FIELD__COUNT) {
		ferr(f, "unknown filter field");
		return -1;
	}
	return 0;
}

durox_expr *durox_expr_cmp(durox_filter *f, int field, int op, const durox_value *v)
{
	if (check_field(f, field) != 0)
		return NULL;
	const char *fname = durox_field_name(field);
	field_type ft = durox_field_type(field);
	if (op < DUROX_OP_EQ || op > DUROX_OP_NOT_NULL)
		return ferr(f, "unknown operator for %s", fname);
	if (field == DUROX_FIELD_TEXT && op != DUROX_OP_CONTAINS)
		return ferr(f, "text search supports only CONTAINS");
	if (op != DUROX_OP_IS_NULL && op != DUROX_OP_NOT_NULL && v == NULL)
		return ferr(f, "missing value for %s", fname);
	if (v != NULL && v->type == DUROX_VAL_NULL) {
		if (op == DUROX_OP_EQ)
			op = DUROX_OP_IS_NULL;
		else if (op == DUROX_OP_NE)
			op = DUROX_OP_NOT_NULL;
		else if (op != DUROX_OP_IS_NULL && op != DUROX_OP_NOT_NULL)
			return ferr(f, "%s cannot be compared with null except by = and !=", fname);
	}
	if ((op == DUROX_OP_PREFIX || op == DUROX_OP_LIKE || op == DUROX_OP_CONTAINS) && ft != FT_TEXT)
		return ferr(f, "%s is not text, so it cannot be matched as a string", fname);
	durox_expr *e = node(f, EXPR_CMP);
	if (e == NULL)
		return NULL;
	e->field = field;
	e->op = op;
	if (op == DUROX_OP_IS_NULL || op == DUROX_OP_NOT_NULL)
		return e;
	e->vals = arena_calloc(&f->mem, 2, sizeof(durox_value));
	if (e->vals == NULL)
		return ferr(f, "out of memory");
	e->nvals = 1;
	if (take_value(f, field, v, &e->vals[0]) != 0)
		return NULL;
	if (op == DUROX_OP_PREFIX) {
		/* the upper bound of the prefix range: prefix || 0xFF */
		size_t n = strlen(e->vals[0].text);
		char *hi = arena_alloc(&f->mem, n + 2);
		if (hi == NULL)
			return ferr(f, "out of memory");
		memcpy(hi, e->vals[0].text, n);
		hi[n] = (char)0xFF;
		hi[n + 1] = '\0';
		e->vals[1] = (durox_value){.type = DUROX_VAL_TEXT, .text = hi};
		e->nvals = 2;
	}
	return e;
}

durox_expr *durox_expr_in(durox_filter *f, int field, const durox_value *vals, size_t n)
{
	if (check_field(f, field) != 0)
		return NULL;
	if (field == DUROX_FIELD_TEXT)
		return ferr(f, "text search supports only CONTAINS");
	if (n == 0)
		return ferr(f, "empty IN list for %s", durox_field_name(field));
	if (n > MAX_IN_VALUES)
		return ferr(f, "too many values in IN list for %s (at most 500)", durox_field_name(field));
	durox_expr *e = node(f, EXPR_IN);
	if (e == NULL)
		return NULL;
	e->field = field;
	e->vals = arena_calloc(&f->mem, n, sizeof(durox_value));
	if (e->vals == NULL)
		return ferr(f, "out of memory");
	e->nvals = n;
	for (size_t k = 0; k < n; k++) {
		if (vals[k].type == DUROX_VAL_NULL)
			return ferr(f, "null in IN list for %s (use IS NULL)", durox_field_name(field));
		if (take_value(f, field, &vals[k], &e->vals[k]) != 0)
			return NULL;
	}
	return e;
}

durox_expr *durox_expr_between(durox_filter *f, int field, const durox_value *lo, const durox_value *hi)
{
	if (check_field(f, field) != 0)
		return NULL;
	if (field == DUROX_FIELD_TEXT)
		return ferr(f, "text search supports only CONTAINS");
	if (lo == NULL || hi == NULL || lo->type == DUROX_VAL_NULL || hi->type == DUROX_VAL_NULL)
		return ferr(f, "BETWEEN needs two values for %s", durox_field_name(field));
	durox_expr *e = node(f, EXPR_BETWEEN);
	if (e == NULL)
		return NULL;
	e->field = field;
	e->vals = arena_calloc(&f->mem, 2, sizeof(durox_value));
	if (e->vals == NULL)
		return ferr(f, "out of memory");
	e->nvals = 2;
	if (take_value(f, field, lo, &e->vals[0]) != 0 || take_value(f, field, hi, &e->vals[1]) != 0)
		return NULL;
	return e;
}

static durox_expr *binary(durox_filter *f, expr_kind k, durox_expr *a, durox_expr *b)
{
	if (a == NULL || b == NULL)
		return ferr(f, "invalid operand");
	durox_expr *e = node(f, k);
	if (e != NULL) {
		e->a = a;
		e->b = b;
	}
	return e;
}

durox_expr *durox_expr_and(durox_filter *f, durox_expr *a, durox_expr *b) { return binary(f, EXPR_AND, a, b); }
durox_expr *durox_expr_or(durox_filter *f, durox_expr *a, durox_expr *b) { return binary(f, EXPR_OR, a, b); }

durox_expr *durox_expr_not(durox_filter *f, durox_expr *a)
{
	if (a == NULL)
		return ferr(f, "invalid operand");
	durox_expr *e = node(f, EXPR_NOT);
	if (e != NULL)
		e->a = a;
	return e;
}

int durox_filter_add(durox_filter *f, durox_expr *e)
{
	if (e == NULL) {
		if (f->err[0] == '\0')
			snprintf(f->err, sizeof f->err, "invalid filter expression");
		return strstr(f->err, "out of memory") ? DUROX_ENOMEM : DUROX_EINVALID;
	}
	if (f->root == NULL) {
		f->root = e;
	} else {
		durox_expr *and = binary(f, EXPR_AND, f->root, e);
		if (and == NULL)
			return DUROX_ENOMEM;
		f->root = and;
	}
	free(f->desc);
	f->desc = NULL;
	return DUROX_OK;
}

static void describe_value(buf *b, const durox_value *v)
{
	if (v->type == DUROX_VAL_NULL)
		buf_adds(b, "NULL");
	else if (v->type == DUROX_VAL_INT && v->text == NULL)
		buf_addi64(b, v->i);
	else {
		buf_addc(b, '\'');
		for (const char *p = v->text; *p; p++) {
			if (*p == '\'')
				buf_addc(b, '\'');
			buf_addc(b, *p);
		}
		buf_addc(b, '\'');
	}
}

static void describe(buf *b, const durox_expr *e);

/* The operands of an AND/OR chain: a left child of the same kind shares the parentheses,
 * so "(a AND b AND c)" is the left-nested tree the query parser builds for that text. */
static void describe_chain(buf *b, const durox_expr *e)
{
	if (e->a->kind == e->kind)
		describe_chain(b, e->a);
	else
		describe(b, e->a);
	buf_adds(b, e->kind == EXPR_AND ? " AND " : " OR ");
	describe(b, e->b);
}

static void describe(buf *b, const durox_expr *e)
{
	static const char *const ops[] = {
	        "=", "!=", "<", "<=", ">", ">=", "STARTS_WITH", "LIKE", "CONTAINS", "IS NULL", "IS NOT NULL"};
	switch (e->kind) {
	case EXPR_AND:
	case EXPR_OR:
		buf_addc(b, '(');
		describe_chain(b, e);
		buf_addc(b, ')');
		return;
	case EXPR_NOT:
		buf_adds(b, "NOT ");
		describe(b, e->a);
		return;
	case EXPR_CMP:
		buf_addf(b, "%s %s", durox_field_name(e->field), ops[e->op]);
		if (e->nvals > 0) {
			buf_addc(b, ' ');
			describe_value(b, &e->vals[0]);
		}
		return;
	case EXPR_IN:
		buf_addf(b, "%s IN (", durox_field_name(e->field));
		for (size_t k = 0; k < e->nvals; k++) {
			if (k)
				buf_adds(b, ", ");
			describe_value(b, &e->vals[k]);
		}
		buf_addc(b, ')');
		return;
	case EXPR_BETWEEN:
		buf_addf(b, "%s BETWEEN ", durox_field_name(e->field));
		describe_value(b, &e->vals[0]);
		buf_adds(b, " AND ");
		describe_value(b, &e->vals[1]);
		return;
	case EXPR_IDSET: buf_addf(b, "instance_id IN <%zu ids>", (size_t)e->vals[0].i); return;
	}
}

durox_expr *filter_idset(durox_filter *f, const char *json_array, size_t n_ids)
{
	durox_expr *e = node(f, EXPR_IDSET);
	if (e == NULL)
		return NULL;
	e->field = DUROX_FIELD_INSTANCE_ID;
	e->vals = arena_calloc(&f->mem, 1, sizeof *e->vals);
	if (e->vals == NULL || (e->vals[0].text = arena_strdup(&f->mem, json_array)) == NULL)
		return ferr(f, "out of memory");
	e->vals[0].type = DUROX_VAL_TEXT;
	e->vals[0].i = (int64_t)n_ids;
	e->nvals = 1;
	return e;
}

const char *durox_filter_describe(durox_filter *f)
{
	if (f->desc != NULL)
		return f->desc;
	buf b;
	buf_init(&b);
	if (f->root == NULL)
		buf_adds(&b, "TRUE");
	else
		describe(&b, f->root);
	if (buf_oom(&b)) {
		buf_free(&b);
		return "";
	}
	f->desc = b.data;
	return f->desc;
}
