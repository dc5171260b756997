/*
 * json.c - strict JSON reader into an arena DOM and compact writer (see json.h).
 * Recursive descent with an explicit depth bound; strings are decoded (escapes,
 * surrogate pairs) into arena memory; invalid UTF-16 surrogates become U+FFFD.
 */
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256

typedef struct parser {
	arena *a;
	const char *p, *start, *end;
	char *err;
	size_t errlen;
	int failed;
} parser;

static void fail(parser *ps, const char *what)
{
	if (ps->failed)
		return;
	ps->failed = 1;
	if (ps->err != NULL && ps->errlen > 0)
		snprintf(ps->err, ps->errlen, "invalid JSON at byte %zu: %s", (size_t)(ps->p - ps->start), what);
}

static void skip_ws(parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static json *node(parser *ps, json_type t)
{
	json *v = arena_calloc(ps->a, 1, sizeof(json));
	if (v == NULL)
		fail(ps, "out of memory");
	else
		v->type = t;
	return v;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Parses a string literal at ps->p (the opening quote); the decoded text goes to out and outlen. */
static int parse_string(parser *ps, const char **out, size_t *outlen)
{
	const char *q = ++ps->p;
	int escapes = 0;
	while (q < ps->end && *q != '"') {
		unsigned char c = (unsigned char)*q;
		if (c < 0x20) {
			ps->p = q;
			fail(ps, "control character in string");
			return -1;
		}
		if (c == '\\') {
			escapes = 1;
			q++;
			if (q >= ps->end)
				break;
		}
		q++;
	}
	if (q >= ps->end) {
		ps->p = q;
		fail(ps, "unterminated string");
		return -1;
	}
	size_t rawlen = (size_t)(q - ps->p);
	if (!escapes) {
		char *s = arena_strndup(ps->a, ps->p, rawlen);
		if (s == NULL) {
			fail(ps, "out of memory");
			return -1;
		}
		*out = s;
		*outlen = rawlen;
		ps->p = q + 1;
		return 0;
	}
	/* Decoded text is never longer than the raw text (\uXXXX -> at most 3 bytes, pairs -> 4 for 12). */
	char *s = arena_alloc(ps->a, rawlen + 1);
	if (s == NULL) {
		fail(ps, "out of memory");
		return -1;
	}
	size_t n = 0;
	const char *r = ps->p;
	while (r < q) {
		if (*r != '\\') {
			s[n++] = *r++;
			continue;
		}
		r++;
		char e = *r++;
		switch (e) {
		case '"': s[n++] = '"'; break;
		case '\\': s[n++] = '\\'; break;
		case '/': s[n++] = '/'; break;
		case 'b': s[n++] = '\b'; break;
		case 'f': s[n++] = '\f'; break;
		case 'n': s[n++] = '\n'; break;
		case 'r': s[n++] = '\r'; break;
		case 't': s[n++] = '\t'; break;
		case 'u': {
			unsigned cp;
			if (q - r < 4 || hex4(r, &cp) != 0) {
				ps->p = r - 2; /* at the backslash */
				fail(ps, "bad \\u escape");
				return -1;
			}
			r += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				unsigned lo;
				if (q - r >= 6 && r[0] == '\\' && r[1] == 'u' && hex4(r + 2, &lo) == 0 &&
				    lo >= 0xDC00 && lo <= 0xDFFF) {
					cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					r += 6;
				} else {
					cp = 0xFFFD;
				}
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				cp = 0xFFFD;
			}
			n += put_utf8(s + n, cp);
			break;
		}
		default:
			ps->p = r - 2; /* at the backslash */
			fail(ps, "bad escape");
			return -1;
		}
	}
	s[n] = '\0';
	*out = s;
	*outlen = n;
	ps->p = q + 1;
	return 0;
}

static json *parse_value(parser *ps, int depth);

static json *parse_number(parser *ps)
{
	const char *s = ps->p, *q = s;
	int integral = 1;
	if (q < ps->end && *q == '-')
		q++;
	if (q >= ps->end || *q < '0' || *q > '9') {
		fail(ps, "expected a value");
		return NULL;
	}
	if (*q == '0')
		q++;
	else
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	if (q < ps->end && *q == '.') {
		integral = 0;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			ps->p = q;
			fail(ps, "expected digits after '.'");
			return NULL;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		integral = 0;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			ps->p = q;
			fail(ps, "expected exponent digits");
			return NULL;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	json *v = node(ps, JSON_NUMBER);
	if (v == NULL)
		return NULL;
	char tmp[64];
	size_t n = (size_t)(q - s);
	v->str = arena_strndup(ps->a, s, n);
	v->len = n;
	if (v->str == NULL) {
		fail(ps, "out of memory");
		return NULL;
	}
	if (integral && n < sizeof tmp) {
		memcpy(tmp, s, n);
		tmp[n] = '\0';
		errno = 0;
		long long ll = strtoll(tmp, NULL, 10);
		if (errno == 0) {
			v->is_int = 1;
			v->i = ll;
		}
	}
	v->d = strtod(v->str, NULL);
	ps->p = q;
	return v;
}

static int literal(parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
		fail(ps, "expected a value");
		return -1;
	}
	ps->p += n;
	return 0;
}

static json *parse_container(parser *ps, int depth, int is_object)
{
	json *v = node(ps, is_object ? JSON_OBJECT : JSON_ARRAY);
	if (v == NULL)
		return NULL;
	char close = is_object ? '}' : ']';
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return v;
	}
	json **tail = &v->child;
	for (;;) {
		const char *key = NULL;
		size_t keylen = 0;
		skip_ws(ps);
		if (is_object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a string key");
				return NULL;
			}
			if (parse_string(ps, &key, &keylen) != 0)
				return NULL;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail(ps, "expected ':'");
				return NULL;
			}
			ps->p++;
		}
		json *c = parse_value(ps, depth + 1);
		if (c == NULL)
			return NULL;
		c->key = key;
		c->keylen = keylen;
		*tail = c;
		tail = &c->next;
		v->count++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			return v;
		}
		fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
		return NULL;
	}
}

static json *parse_value(parser *ps, int depth)
{
	if (depth > MAX_DEPTH) {
		fail(ps, "nesting too deep");
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end of input");
		return NULL;
	}
	json *v;
	switch (*ps->p) {
	case '{': return parse_container(ps, depth, 1);
	case '[': return parse_container(ps, depth, 0);
	case '"':
		v = node(ps, JSON_STRING);
		if (v == NULL || parse_string(ps, &v->str, &v->len) != 0)
			return NULL;
		return v;
	case 't':
		if (literal(ps, "true") != 0)
			return NULL;
		return node(ps, JSON_TRUE);
	case 'f':
		if (literal(ps, "false") != 0)
			return NULL;
		return node(ps, JSON_FALSE);
	case 'n':
		if (literal(ps, "null") != 0)
			return NULL;
		return node(ps, JSON_NULL);
	default: return parse_number(ps);
	}
}

json *json_parse(arena *a, const char *text, size_t len, char *err, size_t errlen)
{
	parser ps = {a, text, text, text + len, err, errlen, 0};
	if (text == NULL) {
		fail(&ps, "no input");
		return NULL;
	}
	json *v = parse_value(&ps, 0);
	if (v == NULL)
		return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		fail(&ps, "trailing characters");
		return NULL;
	}
	return v;
}

const json *json_get(const json *o, const char *key)
{
	if (o == NULL || o->type != JSON_OBJECT)
		return NULL;
	size_t n = strlen(key);
	for (const json *c = o->child; c != NULL; c = c->next)
		if (c->keylen == n && memcmp(c->key, key, n) == 0)
			return c;
	return NULL;
}

const json *json_at(const json *a, size_t idx)
{
	if (a == NULL || a->type != JSON_ARRAY)
		return NULL;
	const json *c = a->child;
	while (c != NULL && idx-- > 0)
		c = c->next;
	return c;
}

const char *json_get_str(const json *o, const char *key)
{
	const json *v = json_get(o, key);
	return v != NULL && v->type == JSON_STRING ? v->str : NULL;
}

int json_get_i64(const json *o, const char *key, int64_t *out)
{
	const json *v = json_get(o, key);
	if (v == NULL || v->type != JSON_NUMBER || !v->is_int)
		return 0;
	*out = v->i;
	return 1;
}

const json *json_first(const json *o) { return o != NULL && o->type == JSON_OBJECT ? o->child : NULL; }

void json_emit(buf *b, const json *v)
{
	switch (v->type) {
	case JSON_NULL: buf_add(b, "null", 4); break;
	case JSON_TRUE: buf_add(b, "true", 4); break;
	case JSON_FALSE: buf_add(b, "false", 5); break;
	case JSON_NUMBER: buf_add(b, v->str, v->len); break;
	case JSON_STRING: buf_add_json_string(b, v->str, v->len); break;
	case JSON_ARRAY:
	case JSON_OBJECT: {
		int obj = v->type == JSON_OBJECT;
		buf_addc(b, obj ? '{' : '[');
		for (const json *c = v->child; c != NULL; c = c->next) {
			if (c != v->child)
				buf_addc(b, ',');
			if (obj) {
				buf_add_json_string(b, c->key, c->keylen);
				buf_addc(b, ':');
			}
			json_emit(b, c);
		}
		buf_addc(b, obj ? '}' : ']');
		break;
	}
	}
}
