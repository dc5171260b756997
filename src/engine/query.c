/*
 * query.c - the query language: a hand-written lexer and recursive-descent parser that turn
 * text like "status IN ('Failed','Running') AND created_at > now() - 1h" into the same
 * filter tree that Lua-table filters build (durox_expr_* in filter.c), so a provider
 * compiles both alike, every value a bound parameter. Relies on filter.c's constructors
 * and util/timeutil; used by the Lua binding (query strings wherever a filter is taken),
 * duroxlua --query and the fuzzer. The grammar and every message: docs/query-language.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/internal.h"
#include "engine/query.h"
#include "util/timeutil.h"

/* ---- tokens ------------------------------------------------------------------------ */

typedef enum tok_kind {
	T_END,
	T_WORD,     /* a field name, keyword, now, true/false (ASCII letters, digits, '_') */
	T_STRING,   /* '...' or "..." (the quote doubled inside stands for itself) */
	T_INT,      /* digits */
	T_DURATION, /* digits with units: 30m, 1h30m, 500ms */
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_EQ,
	T_NE, /* != or <> */
	T_LT,
	T_LE,
	T_GT,
	T_GE,
	T_MINUS,
	T_PLUS
} tok_kind;

typedef struct tok {
	tok_kind kind;
	size_t pos, len; /* 0-based byte offset and length in the text */
	const char *str; /* T_STRING: the decoded value (in the filter's arena) */
	uint64_t num;    /* T_INT: the magnitude (at most 2^63); T_DURATION: milliseconds */
} tok;

typedef struct parser {
	durox_filter *f;
	const char *src;
	size_t len;
	size_t at; /* the lexer's position */
	tok t;     /* the current token */
	int64_t now;
	int parens; /* parentheses open around the current token */
	unsigned conditions;
	int rc; /* DUROX_OK until the first error; later errors are ignored */
	char *err;
	size_t errlen;
} parser;

#define LEVELS_MSG                                                                                                     \
	"conditions nest more than %d levels deep (each NOT, and each AND or OR group inside another, is a level)"
#define FIELDS                                                                                                         \
	"status, failure_kind, orchestration_name (or name), version, instance_id (or id), parent_instance (or "       \
	"parent), has_parent, created_at, updated_at, completed_at, custom_status, execution_count, text"

static void fail(parser *p, size_t pos, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;

/* Records the first error: "query error at position <pos+1>: <message>". */
static void fail(parser *p, size_t pos, const char *fmt, ...)
{
	if (p->rc != DUROX_OK)
		return;
	p->rc = DUROX_EINVALID;
	p->t.kind = T_END; /* unwinds the parser: nothing more is read */
	if (p->err == NULL || p->errlen == 0)
		return;
	int n = snprintf(p->err, p->errlen, "query error at position %zu: ", pos + 1);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void fail_oom(parser *p)
{
	if (p->rc != DUROX_OK)
		return;
	p->rc = DUROX_ENOMEM;
	p->t.kind = T_END;
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "out of memory");
}

/* A constructor of filter.c refused a node: report its message at pos. */
static durox_expr *construct_fail(parser *p, size_t pos)
{
	const char *m = durox_filter_error(p->f);
	if (strstr(m, "out of memory") != NULL)
		fail_oom(p);
	else
		fail(p, pos, "%s", m[0] ? m : "invalid condition");
	return NULL;
}

/* Copies at most 32 bytes of s (cut at a UTF-8 boundary, "..." when cut) into out, with
 * control characters shown as '?', so that messages stay one short line. */
static const char *snip(char *out, size_t outlen, const char *s, size_t len)
{
	size_t n = len;
	int cut = 0;
	if (n > 32) {
		n = 32;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		cut = 1;
	}
	size_t k = 0;
	for (size_t i = 0; i < n && k + 4 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		out[k++] = c < 0x20 || c == 0x7F ? '?' : (char)c;
	}
	if (cut && k + 4 <= outlen) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
	return out;
}

/* What token t is, for "but found ...": end of query, 'AND', string 'x', number 42. */
static const char *tok_desc(const parser *p, const tok *t, char *out, size_t outlen)
{
	char s[48];
	snip(s, sizeof s, p->src + t->pos, t->len);
	switch (t->kind) {
	case T_END: snprintf(out, outlen, "end of query"); break;
	case T_STRING: snprintf(out, outlen, "string %s", s); break;
	case T_INT: snprintf(out, outlen, "number %s", s); break;
	case T_DURATION: snprintf(out, outlen, "duration %s", s); break;
	default: snprintf(out, outlen, "'%s'", s); break;
	}
	return out;
}

/* ---- lexer ------------------------------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

static void lex_string(parser *p, tok *t)
{
	const char *s = p->src;
	char q = s[t->pos];
	size_t j = t->pos + 1, n = 0;
	for (;;) {
		if (j >= p->len) {
			fail(p, p->len, "unterminated string starting at position %zu", t->pos + 1);
			return;
		}
		if (s[j] == q) {
			if (j + 1 < p->len && s[j + 1] == q) {
				n++;
				j += 2;
				continue;
			}
			break;
		}
		n++;
		j++;
	}
	char *out = arena_alloc(&p->f->mem, n + 1);
	if (out == NULL) {
		fail_oom(p);
		return;
	}
	size_t k = 0;
	for (size_t i = t->pos + 1; i < j; i++) {
		out[k++] = s[i];
		if (s[i] == q)
			i++; /* the doubled quote */
	}
	out[k] = '\0';
	t->kind = T_STRING;
	t->str = out;
	t->len = j + 1 - t->pos;
}

static void lex_number(parser *p, tok *t)
{
	const char *s = p->src;
	size_t i = t->pos;
	while (i < p->len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '.'))
		i++;
	t->len = i - t->pos;
	char sn[48];
	uint64_t v = 0;
	int over = 0;
	size_t k = t->pos;
	for (; k < i && is_digit(s[k]); k++) {
		if (v > (UINT64_MAX - 9) / 10)
			over = 1;
		else
			v = v * 10 + (uint64_t)(s[k] - '0');
	}
	if (k == i) {
		if (over || v > (uint64_t)INT64_MAX + 1) {
			fail(p, t->pos, "number %s is out of range", snip(sn, sizeof sn, s + t->pos, t->len));
			return;
		}
		if (t->len == 4 && i + 1 < p->len && s[i] == '-' && is_digit(s[i + 1])) {
			fail(p, t->pos, "a timestamp must be quoted, like '2026-01-31' or '2026-01-31T12:00:00Z'");
			return;
		}
		t->kind = T_INT;
		t->num = v;
		return;
	}
	int64_t ms;
	if (time_parse_duration(s + t->pos, t->len, &ms) == 0) {
		t->kind = T_DURATION;
		t->num = (uint64_t)ms;
		return;
	}
	fail(p, t->pos, "invalid number or duration '%s' (expected an integer, or a duration like 30m, 1h30m or 500ms)",
	     snip(sn, sizeof sn, s + t->pos, t->len));
}

/* Reads the next token into p->t (T_END after an error). */
static void next(parser *p)
{
	if (p->rc != DUROX_OK) {
		p->t.kind = T_END;
		return;
	}
	const char *s = p->src;
	size_t i = p->at;
	while (i < p->len && is_space(s[i]))
		i++;
	tok t = {.kind = T_END, .pos = i, .len = 1};
	if (i >= p->len) {
		t.len = 0;
		p->t = t;
		p->at = i;
		return;
	}
	char c = s[i], c2 = i + 1 < p->len ? s[i + 1] : '\0';
	switch (c) {
	case '(': t.kind = T_LPAREN; break;
	case ')': t.kind = T_RPAREN; break;
	case ',': t.kind = T_COMMA; break;
	case '=': t.kind = T_EQ; break;
	case '-': t.kind = T_MINUS; break;
	case '+': t.kind = T_PLUS; break;
	case '!':
		if (c2 != '=') {
			fail(p, i, "unexpected character '!' (did you mean '!='?)");
			return;
		}
		t.kind = T_NE;
		t.len = 2;
		break;
	case '<':
		t.kind = c2 == '=' ? T_LE : c2 == '>' ? T_NE : T_LT;
		t.len = t.kind == T_LT ? 1 : 2;
		break;
	case '>':
		t.kind = c2 == '=' ? T_GE : T_GT;
		t.len = t.kind == T_GT ? 1 : 2;
		break;
	case '\'':
	case '"': lex_string(p, &t); break;
	default:
		if (is_digit(c)) {
			lex_number(p, &t);
		} else if (is_alpha(c)) {
			size_t j = i;
			while (j < p->len && (is_alpha(s[j]) || is_digit(s[j])))
				j++;
			t.kind = T_WORD;
			t.len = j - i;
		} else if (c == '&' || c == '|') {
			fail(p, i, "unexpected character '%c' (use %s)", c, c == '&' ? "AND" : "OR");
		} else if ((unsigned char)c > 0x20 && (unsigned char)c < 0x7F) {
			fail(p, i, "unexpected character '%c'", c);
		} else {
			fail(p, i, "unexpected byte 0x%02X (text values must be quoted)", (unsigned)(unsigned char)c);
		}
	}
	if (p->rc != DUROX_OK)
		return;
	p->t = t;
	p->at = t.pos + t.len;
}

/* Nonzero when t is the keyword w (ASCII case-insensitive). */
static int kw(const parser *p, const tok *t, const char *w)
{
	size_t n = strlen(w);
	return t->kind == T_WORD && t->len == n && strncasecmp(p->src + t->pos, w, n) == 0;
}

static int reserved(const parser *p, const tok *t)
{
	static const char *const words[] = {"AND",         "OR",       "NOT", "IN",   "BETWEEN", "LIKE",
	                                    "STARTS_WITH", "CONTAINS", "IS",  "NULL", "TRUE",    "FALSE"};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (kw(p, t, words[i]))
			return 1;
	return 0;
}

/* ---- values ------------------------------------------------------------------------ */

typedef struct qval {
	durox_value v;
	size_t pos;
	int is_null;
} qval;

static const char *type_name(int field)
{
	field_type ft = durox_field_type(field);
	return ft == FT_TIME ? "a time" : ft == FT_INT ? "an integer" : "text";
}

/* A quoted value, converted for field: times are resolved now (keeping their text, so a
 * relative time describes the same filter on every call), integers parsed, status and
 * failure kind names checked. */
static int string_value(parser *p, int field, const tok *t, qval *out)
{
	const char *s = t->str, *fname = durox_field_name(field);
	char sn[48];
	field_type ft = durox_field_type(field);
	if (ft == FT_TIME) {
		int64_t ms;
		if (time_parse_user(s, p->now, &ms, NULL, 0) != 0) {
			fail(p, t->pos,
			     "invalid time %s for %s (expected an ISO-8601 time like '2026-01-31T12:00:00Z' or "
			     "'2026-01-31', "
			     "milliseconds since the epoch, or a relative time like '-30m')",
			     snip(sn, sizeof sn, p->src + t->pos, t->len), fname);
			return -1;
		}
		out->v = (durox_value){.type = DUROX_VAL_INT, .i = ms, .text = s}; /* s lives in the filter's arena */
		return 0;
	}
	if (ft == FT_INT) {
		const char *q = s + (*s == '-');
		uint64_t m = 0;
		int ok = *q != '\0';
		for (; ok && *q; q++) {
			if (!is_digit(*q) || m > ((uint64_t)INT64_MAX + 1 - 9) / 10)
				ok = 0;
			else
				m = m * 10 + (uint64_t)(*q - '0');
		}
		if (!ok || m > (uint64_t)INT64_MAX + (*s == '-')) {
			fail(p, t->pos, "%s expects an integer but found string %s", fname,
			     snip(sn, sizeof sn, p->src + t->pos, t->len));
			return -1;
		}
		out->v = (durox_value){.type = DUROX_VAL_INT, .i = *s == '-' ? (int64_t)(0 - m) : (int64_t)m};
		return 0;
	}
	if (field == DUROX_FIELD_STATUS && durox_status_parse(s) < 0) {
		fail(p, t->pos,
		     "unknown status %s (expected Running, Completed, Failed, ContinuedAsNew or Unknown; a cancelled "
		     "instance is Failed with failure_kind 'cancelled')",
		     snip(sn, sizeof sn, p->src + t->pos, t->len));
		return -1;
	}
	if (field == DUROX_FIELD_FAILURE_KIND && durox_failure_kind_parse(s) < 0) {
		fail(p, t->pos,
		     "unknown failure_kind %s (expected application, cancelled, poison, nondeterminism, infrastructure "
		     "or configuration)",
		     snip(sn, sizeof sn, p->src + t->pos, t->len));
		return -1;
	}
	out->v = (durox_value){.type = DUROX_VAL_TEXT, .text = s};
	return 0;
}

/* An integer literal (sign already read): the magnitude in n, negative when neg. */
static int int_value(parser *p, int field, const tok *n, int neg, size_t pos, qval *out)
{
	char sn[48];
	snip(sn, sizeof sn, p->src + n->pos, n->len);
	if (!neg && n->num > (uint64_t)INT64_MAX) {
		fail(p, n->pos, "number %s is out of range", sn);
		return -1;
	}
	if (durox_field_type(field) == FT_TEXT) {
		fail(p, pos, "%s is text, so the value must be quoted: '%s%s'", durox_field_name(field), neg ? "-" : "",
		     sn);
		return -1;
	}
	int64_t v = neg ? (int64_t)(0 - n->num) : (int64_t)n->num; /* 0 - 2^63 wraps to INT64_MIN */
	out->v = (durox_value){.type = DUROX_VAL_INT, .i = v};
	return 0;
}

/* base + sign * d, or -1 when it leaves the int64 range. */
static int shift_time(int64_t base, int neg, uint64_t d, int64_t *out)
{
	if (d > (uint64_t)INT64_MAX)
		return -1;
	int64_t di = (int64_t)d;
	if (neg ? base < INT64_MIN + di : base > INT64_MAX - di)
		return -1;
	*out = neg ? base - di : base + di;
	return 0;
}

/* A time relative to the query's now: "now()", "now() - 1h" or "-30m"; the value keeps
 * its canonical text (prefix + duration as written). */
static int relative_value(parser *p, int field, const char *prefix, int neg, const tok *d, size_t pos, qval *out)
{
	int64_t ms = p->now;
	char sn[48];
	if (durox_field_type(field) != FT_TIME) {
		fail(p, pos, "%s is %s, but %s%s is a time", durox_field_name(field), type_name(field),
		     d != NULL ? prefix : "now()", d != NULL ? snip(sn, sizeof sn, p->src + d->pos, d->len) : "");
		return -1;
	}
	if (d != NULL && shift_time(p->now, neg, d->num, &ms) != 0) {
		fail(p, pos, "time %s%s is out of range", prefix, snip(sn, sizeof sn, p->src + d->pos, d->len));
		return -1;
	}
	size_t n = strlen(prefix) + (d != NULL ? d->len : 0);
	char *text = arena_alloc(&p->f->mem, n + 1);
	if (text == NULL) {
		fail_oom(p);
		return -1;
	}
	snprintf(text, n + 1, "%s%.*s", prefix, d != NULL ? (int)d->len : 0, d != NULL ? p->src + d->pos : "");
	out->v = (durox_value){.type = DUROX_VAL_INT, .i = ms, .text = text};
	return 0;
}

/* now() [(+|-) duration] (the current token is the word now). */
static int now_value(parser *p, int field, qval *out)
{
	char d[64];
	size_t pos = p->t.pos;
	next(p);
	if (p->t.kind != T_LPAREN) {
		fail(p, p->t.pos, "expected '(' after now but found %s", tok_desc(p, &p->t, d, sizeof d));
		return -1;
	}
	next(p);
	if (p->t.kind != T_RPAREN) {
		fail(p, p->t.pos, "expected ')' after 'now(' but found %s", tok_desc(p, &p->t, d, sizeof d));
		return -1;
	}
	next(p);
	if (p->t.kind != T_MINUS && p->t.kind != T_PLUS)
		return relative_value(p, field, "now()", 0, NULL, pos, out);
	int neg = p->t.kind == T_MINUS;
	next(p);
	if (p->t.kind != T_DURATION) {
		fail(p, p->t.pos, "expected a duration after '%c' (like 30m, 1h or 2d) but found %s", neg ? '-' : '+',
		     tok_desc(p, &p->t, d, sizeof d));
		return -1;
	}
	tok dur = p->t;
	next(p);
	return relative_value(p, field, neg ? "now() - " : "now() + ", neg, &dur, pos, out);
}

/* A value for field after `after` (for messages). null_msg: the error for NULL here, or
 * NULL when NULL is allowed (then out->is_null is set). */
static int parse_value(parser *p, int field, const char *after, const char *null_msg, qval *out)
{
	char d[64], sn[48];
	tok t = p->t;
	*out = (qval){.pos = t.pos};
	switch (t.kind) {
	case T_STRING: next(p); return string_value(p, field, &t, out);
	case T_INT: next(p); return int_value(p, field, &t, 0, t.pos, out);
	case T_MINUS:
	case T_PLUS: {
		int neg = t.kind == T_MINUS;
		next(p);
		tok n = p->t;
		if (n.kind == T_INT) {
			next(p);
			return int_value(p, field, &n, neg, t.pos, out);
		}
		if (n.kind == T_DURATION) {
			next(p);
			return relative_value(p, field, neg ? "-" : "+", neg, &n, t.pos, out);
		}
		fail(p, n.pos, "expected a number or a duration after '%c' but found %s", neg ? '-' : '+',
		     tok_desc(p, &n, d, sizeof d));
		return -1;
	}
	case T_DURATION:
		snip(sn, sizeof sn, p->src + t.pos, t.len);
		fail(p, t.pos, "duration %s is not a point in time (write now() - %s, or -%s)", sn, sn, sn);
		return -1;
	case T_WORD:
		if (kw(p, &t, "NULL")) {
			if (null_msg != NULL) {
				fail(p, t.pos, "%s", null_msg);
				return -1;
			}
			next(p);
			out->is_null = 1;
			out->v = (durox_value){.type = DUROX_VAL_NULL};
			return 0;
		}
		if (kw(p, &t, "now"))
			return now_value(p, field, out);
		if (kw(p, &t, "TRUE") || kw(p, &t, "FALSE")) {
			fail(p, t.pos, "true and false are values of has_parent only");
			return -1;
		}
		if (!reserved(p, &t)) {
			snip(sn, sizeof sn, p->src + t.pos, t.len);
			fail(p, t.pos, "expected a value after %s but found '%s' (text values are quoted: '%s')", after,
			     sn, sn);
			return -1;
		}
		break;
	default: break;
	}
	fail(p, t.pos, "expected a value after %s but found %s", after, tok_desc(p, &t, d, sizeof d));
	return -1;
}

/* ---- conditions -------------------------------------------------------------------- */

/* Checks that operator `op` (named opname, at pos) applies to field. match: STARTS_WITH,
 * LIKE or CONTAINS; contains: CONTAINS. */
static int check_op(parser *p, int field, const char *opname, size_t pos, int match, int contains)
{
	const char *fname = durox_field_name(field);
	if (field == DUROX_FIELD_TEXT && !contains) {
		fail(p, pos, "the text field supports only CONTAINS (text CONTAINS 'word'), not %s", opname);
		return -1;
	}
	if (!match)
		return 0;
	if (durox_field_type(field) != FT_TEXT) {
		fail(p, pos, "%s needs a text field, but %s is %s", opname, fname, type_name(field));
		return -1;
	}
	if (field == DUROX_FIELD_STATUS || field == DUROX_FIELD_FAILURE_KIND) {
		fail(p, pos, "%s is matched by its exact name: use =, != or IN, not %s", fname, opname);
		return -1;
	}
	return 0;
}

static durox_expr *parse_compare(parser *p, int field, int op)
{
	char after[16], sn[48];
	tok ot = p->t;
	snprintf(after, sizeof after, "'%s'", snip(sn, sizeof sn, p->src + ot.pos, ot.len));
	if (check_op(p, field, after, ot.pos, 0, 0) != 0)
		return NULL;
	next(p);
	qval v;
	if (parse_value(p, field, after, NULL, &v) != 0)
		return NULL;
	if (v.is_null && op != DUROX_OP_EQ && op != DUROX_OP_NE) {
		fail(p, v.pos, "NULL can only be compared with = or != (or use IS NULL, IS NOT NULL)");
		return NULL;
	}
	durox_expr *e = durox_expr_cmp(p->f, field, op, &v.v);
	return e != NULL ? e : construct_fail(p, v.pos);
}

static durox_expr *parse_in(parser *p, int field)
{
	char d[64];
	if (check_op(p, field, "IN", p->t.pos, 0, 0) != 0)
		return NULL;
	next(p);
	if (p->t.kind != T_LPAREN) {
		fail(p, p->t.pos, "expected '(' after IN but found %s", tok_desc(p, &p->t, d, sizeof d));
		return NULL;
	}
	size_t open = p->t.pos;
	next(p);
	durox_value vals[QUERY_MAX_IN];
	size_t n = 0;
	for (;;) {
		if (n == QUERY_MAX_IN) {
			fail(p, p->t.pos, "more than %d values in the IN list", QUERY_MAX_IN);
			return NULL;
		}
		qval v;
		if (parse_value(p, field, n == 0 ? "'('" : "','", "NULL is not allowed in an IN list (use IS NULL)",
		                &v) != 0)
			return NULL;
		vals[n++] = v.v;
		if (p->t.kind == T_COMMA) {
			next(p);
			continue;
		}
		if (p->t.kind == T_RPAREN) {
			next(p);
			break;
		}
		fail(p, p->t.pos, "expected ',' or ')' in the IN list opened at position %zu but found %s", open + 1,
		     tok_desc(p, &p->t, d, sizeof d));
		return NULL;
	}
	durox_expr *e = durox_expr_in(p->f, field, vals, n);
	return e != NULL ? e : construct_fail(p, open);
}

static durox_expr *parse_between(parser *p, int field)
{
	char d[64];
	size_t pos = p->t.pos;
	if (check_op(p, field, "BETWEEN", pos, 0, 0) != 0)
		return NULL;
	next(p);
	qval lo, hi;
	if (parse_value(p, field, "BETWEEN", "NULL is not allowed in BETWEEN", &lo) != 0)
		return NULL;
	if (!kw(p, &p->t, "AND")) {
		fail(p, p->t.pos, "expected AND after the first value of BETWEEN but found %s",
		     tok_desc(p, &p->t, d, sizeof d));
		return NULL;
	}
	next(p);
	if (parse_value(p, field, "AND", "NULL is not allowed in BETWEEN", &hi) != 0)
		return NULL;
	durox_expr *e = durox_expr_between(p->f, field, &lo.v, &hi.v);
	return e != NULL ? e : construct_fail(p, pos);
}

/* STARTS_WITH, LIKE or CONTAINS 'text' */
static durox_expr *parse_match(parser *p, int field, int op, const char *opname)
{
	char d[64];
	if (check_op(p, field, opname, p->t.pos, 1, op == DUROX_OP_CONTAINS) != 0)
		return NULL;
	next(p);
	tok t = p->t;
	if (t.kind != T_STRING) {
		fail(p, t.pos, "expected a quoted string after %s but found %s", opname, tok_desc(p, &t, d, sizeof d));
		return NULL;
	}
	next(p);
	durox_value v = {.type = DUROX_VAL_TEXT, .text = t.str};
	durox_expr *e = durox_expr_cmp(p->f, field, op, &v);
	return e != NULL ? e : construct_fail(p, t.pos);
}

static durox_expr *parse_is(parser *p, int field)
{
	char d[64];
	if (check_op(p, field, "IS", p->t.pos, 0, 0) != 0)
		return NULL;
	next(p);
	int negate = 0;
	if (kw(p, &p->t, "NOT")) {
		negate = 1;
		next(p);
	}
	if (!kw(p, &p->t, "NULL")) {
		fail(p, p->t.pos, "expected %s after IS%s but found %s", negate ? "NULL" : "NULL or NOT NULL",
		     negate ? " NOT" : "", tok_desc(p, &p->t, d, sizeof d));
		return NULL;
	}
	size_t pos = p->t.pos;
	next(p);
	durox_expr *e = durox_expr_cmp(p->f, field, negate ? DUROX_OP_NOT_NULL : DUROX_OP_IS_NULL, NULL);
	return e != NULL ? e : construct_fail(p, pos);
}

/* has_parent = true|false, has_parent != true|false: parent_instance IS [NOT] NULL */
static durox_expr *parse_has_parent(parser *p)
{
	char d[64], sn[48];
	next(p);
	tok op = p->t;
	if (op.kind != T_EQ && op.kind != T_NE) {
		fail(p, op.pos, "has_parent takes = or != and true or false (has_parent = true) but found %s",
		     tok_desc(p, &op, d, sizeof d));
		return NULL;
	}
	next(p);
	tok v = p->t;
	int yes = kw(p, &v, "TRUE");
	if (!yes && !kw(p, &v, "FALSE")) {
		fail(p, v.pos, "expected true or false after '%s' but found %s",
		     snip(sn, sizeof sn, p->src + op.pos, op.len), tok_desc(p, &v, d, sizeof d));
		return NULL;
	}
	next(p);
	int has = (op.kind == T_EQ) == yes;
	durox_expr *e =
	        durox_expr_cmp(p->f, DUROX_FIELD_PARENT_INSTANCE, has ? DUROX_OP_NOT_NULL : DUROX_OP_IS_NULL, NULL);
	return e != NULL ? e : construct_fail(p, v.pos);
}

/* field operator value(s); *lv is 1 for a negated operator (x NOT IN ...), else 0. */
static durox_expr *parse_condition(parser *p, const char *after, int *lv)
{
	char d[64], sn[48];
	tok ft = p->t;
	*lv = 0;
	if (ft.kind != T_WORD || reserved(p, &ft)) {
		if (after != NULL)
			fail(p, ft.pos, "expected a condition after %s but found %s", after,
			     tok_desc(p, &ft, d, sizeof d));
		else
			fail(p, ft.pos, "expected a condition but found %s", tok_desc(p, &ft, d, sizeof d));
		return NULL;
	}
	if (++p->conditions > QUERY_MAX_CONDITIONS) {
		fail(p, ft.pos, "more than %d conditions", QUERY_MAX_CONDITIONS);
		return NULL;
	}
	snip(sn, sizeof sn, p->src + ft.pos, ft.len);
	if (ft.len == 10 && strncasecmp(p->src + ft.pos, "has_parent", 10) == 0)
		return parse_has_parent(p);
	char name[40];
	int field = -1;
	if (ft.len < sizeof name) {
		memcpy(name, p->src + ft.pos, ft.len);
		name[ft.len] = '\0';
		field = durox_field_parse(name);
	}
	if (field < 0) {
		fail(p, ft.pos, "unknown field '%s' (fields: " FIELDS ")", sn);
		return NULL;
	}
	next(p);
	int negate = 0;
	if (kw(p, &p->t, "NOT")) {
		negate = 1;
		next(p);
		if (!kw(p, &p->t, "IN") && !kw(p, &p->t, "BETWEEN") && !kw(p, &p->t, "LIKE") &&
		    !kw(p, &p->t, "STARTS_WITH") && !kw(p, &p->t, "CONTAINS")) {
			fail(p, p->t.pos, "expected IN, BETWEEN, LIKE, STARTS_WITH or CONTAINS after NOT but found %s",
			     tok_desc(p, &p->t, d, sizeof d));
			return NULL;
		}
	}
	durox_expr *e;
	switch (p->t.kind) {
	case T_EQ: e = parse_compare(p, field, DUROX_OP_EQ); break;
	case T_NE: e = parse_compare(p, field, DUROX_OP_NE); break;
	case T_LT: e = parse_compare(p, field, DUROX_OP_LT); break;
	case T_LE: e = parse_compare(p, field, DUROX_OP_LE); break;
	case T_GT: e = parse_compare(p, field, DUROX_OP_GT); break;
	case T_GE: e = parse_compare(p, field, DUROX_OP_GE); break;
	default:
		if (kw(p, &p->t, "IN"))
			e = parse_in(p, field);
		else if (kw(p, &p->t, "BETWEEN"))
			e = parse_between(p, field);
		else if (kw(p, &p->t, "STARTS_WITH"))
			e = parse_match(p, field, DUROX_OP_PREFIX, "STARTS_WITH");
		else if (kw(p, &p->t, "LIKE"))
			e = parse_match(p, field, DUROX_OP_LIKE, "LIKE");
		else if (kw(p, &p->t, "CONTAINS"))
			e = parse_match(p, field, DUROX_OP_CONTAINS, "CONTAINS");
		else if (kw(p, &p->t, "IS"))
			e = parse_is(p, field);
		else {
			fail(p, p->t.pos,
			     "expected an operator after '%s' (=, !=, <, <=, >, >=, IN, BETWEEN, STARTS_WITH, LIKE, "
			     "CONTAINS or "
			     "IS NULL) but found %s",
			     sn, tok_desc(p, &p->t, d, sizeof d));
			return NULL;
		}
	}
	if (e == NULL || !negate)
		return e;
	*lv = 1;
	e = durox_expr_not(p->f, e);
	return e != NULL ? e : construct_fail(p, ft.pos);
}

/* ---- expressions ------------------------------------------------------------------- */

/*
 * Levels bound the depth of the tree the way its canonical text and its SQL nest: a NOT
 * adds one; an AND or OR node adds one over its children, except that a left child of the
 * same kind shares its parentheses ("(a AND b AND c)"). The canonical text of a filter
 * nests exactly as many levels as the filter has, so it always parses back.
 */
static durox_expr *parse_or(parser *p, const char *after, int *lv);

static durox_expr *join(parser *p, expr_kind k, durox_expr *a, int la, durox_expr *b, int lb, size_t pos, int *lv)
{
	int l = (a->kind == k ? la - 1 : la);
	l = 1 + (l > lb ? l : lb);
	if (l > QUERY_MAX_LEVELS) {
		fail(p, pos, LEVELS_MSG, QUERY_MAX_LEVELS);
		return NULL;
	}
	durox_expr *e = k == EXPR_AND ? durox_expr_and(p->f, a, b) : durox_expr_or(p->f, a, b);
	if (e == NULL)
		return construct_fail(p, pos);
	*lv = l;
	return e;
}

static durox_expr *parse_primary(parser *p, const char *after, int *lv)
{
	char d[64];
	if (p->t.kind != T_LPAREN)
		return parse_condition(p, after, lv);
	size_t open = p->t.pos;
	if (p->parens >= QUERY_MAX_PARENS) {
		fail(p, open, "parentheses nest more than %d deep", QUERY_MAX_PARENS);
		return NULL;
	}
	p->parens++;
	next(p);
	durox_expr *e = parse_or(p, "'('", lv);
	p->parens--;
	if (e == NULL)
		return NULL;
	if (p->t.kind != T_RPAREN) {
		fail(p, p->t.pos, "expected AND, OR or ')' (closing the '(' at position %zu) but found %s", open + 1,
		     tok_desc(p, &p->t, d, sizeof d));
		return NULL;
	}
	next(p);
	return e;
}

static durox_expr *parse_not(parser *p, const char *after, int *lv)
{
	size_t first = p->t.pos;
	int nots = 0;
	while (kw(p, &p->t, "NOT")) {
		if (++nots > QUERY_MAX_LEVELS) {
			fail(p, p->t.pos, LEVELS_MSG, QUERY_MAX_LEVELS);
			return NULL;
		}
		next(p);
		after = "NOT";
	}
	durox_expr *e = parse_primary(p, after, lv);
	for (; e != NULL && nots > 0; nots--) {
		if (*lv >= QUERY_MAX_LEVELS) {
			fail(p, first, LEVELS_MSG, QUERY_MAX_LEVELS);
			return NULL;
		}
		e = durox_expr_not(p->f, e);
		if (e == NULL)
			return construct_fail(p, first);
		(*lv)++;
	}
	return e;
}

static durox_expr *parse_and(parser *p, const char *after, int *lv)
{
	durox_expr *a = parse_not(p, after, lv);
	while (a != NULL && kw(p, &p->t, "AND")) {
		size_t pos = p->t.pos;
		int lb;
		next(p);
		durox_expr *b = parse_not(p, "AND", &lb);
		if (b == NULL)
			return NULL;
		a = join(p, EXPR_AND, a, *lv, b, lb, pos, lv);
	}
	return a;
}

static durox_expr *parse_or(parser *p, const char *after, int *lv)
{
	durox_expr *a = parse_and(p, after, lv);
	while (a != NULL && kw(p, &p->t, "OR")) {
		size_t pos = p->t.pos;
		int lb;
		next(p);
		durox_expr *b = parse_and(p, "OR", &lb);
		if (b == NULL)
			return NULL;
		a = join(p, EXPR_OR, a, *lv, b, lb, pos, lv);
	}
	return a;
}

/* ---- entry points ------------------------------------------------------------------ */

int query_parse(durox_filter *f, const char *text, int64_t now, char *errbuf, size_t errlen)
{
	parser p = {.f = f, .src = text, .now = now, .err = errbuf, .errlen = errlen};
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (f == NULL || text == NULL) {
		fail(&p, 0, "no query text");
		return DUROX_EINVALID;
	}
	p.len = strlen(text);
	if (p.len > QUERY_MAX_LEN) {
		fail(&p, QUERY_MAX_LEN, "query is longer than %d bytes", QUERY_MAX_LEN);
		return DUROX_EINVALID;
	}
	/* constructor errors are reported by position here; keep the filter's own message */
	char saved[sizeof f->err];
	memcpy(saved, f->err, sizeof saved);
	f->err[0] = '\0';
	next(&p);
	int lv = 0;
	durox_expr *e = parse_or(&p, NULL, &lv);
	if (e != NULL && p.t.kind != T_END) {
		char d[64];
		fail(&p, p.t.pos, "expected AND, OR or end of query but found %s", tok_desc(&p, &p.t, d, sizeof d));
	}
	if (p.rc == DUROX_OK && e == NULL)
		construct_fail(&p, 0); /* not reached: every NULL above has reported */
	if (p.rc == DUROX_OK && durox_filter_add(f, e) != DUROX_OK)
		fail_oom(&p);
	memcpy(f->err, saved, sizeof saved);
	return p.rc;
}

int durox_filter_add_query(durox_filter *f, const char *text, char *errbuf, size_t errlen)
{
	return query_parse(f, text, time_now_ms(), errbuf, errlen);
}

int durox_filter_parse(const char *text, durox_filter **out, char *errbuf, size_t errlen)
{
	if (out == NULL)
		return DUROX_EINVALID;
	*out = NULL;
	durox_filter *f = durox_filter_new();
	if (f == NULL) {
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	int rc = durox_filter_add_query(f, text, errbuf, errlen);
	if (rc != DUROX_OK) {
		durox_filter_free(f);
		return rc;
	}
	*out = f;
	return DUROX_OK;
}
