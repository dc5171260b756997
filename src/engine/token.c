/*
 * token.c - continuation tokens (see token.h). Used by list.c and history.c.
 */
#include "engine/token.h"

#include <string.h>

#include "util/codec.h"

#define TOKEN_SALT "duroxlua-token-v1"

void token_put_u64(buf *b, uint64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	buf_add(b, x, 8);
}

void token_put_bytes(buf *b, const void *p, size_t len)
{
	uint32_t n = (uint32_t)len;
	unsigned char x[4] = {(unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
	                      (unsigned char)(n >> 24)};
	buf_add(b, x, 4);
	buf_add(b, p, n);
}

void token_put_str(buf *b, const char *s) { token_put_bytes(b, s, strlen(s)); }

static uint64_t checksum(const void *p, size_t n)
{
	return fnv1a64(fnv1a64(FNV1A64_INIT, TOKEN_SALT, sizeof TOKEN_SALT - 1), p, n);
}

const char *token_seal(arena *a, buf *b)
{
	token_put_u64(b, checksum(b->data, b->len));
	if (buf_oom(b))
		return NULL;
	buf out;
	buf_init(&out);
	b64url_encode(&out, b->data, b->len);
	const char *res = buf_oom(&out) ? NULL : arena_strndup(a, out.data, out.len);
	buf_free(&out);
	return res;
}

int token_open(const char *token, buf *raw)
{
	/* only the canonical text token_seal makes: no padding, nothing appended */
	size_t len = strlen(token);
	if (strchr(token, '=') != NULL || b64url_decode(raw, token, len) != 0 || raw->len < 9 ||
	    (raw->len * 8 + 5) / 6 != len)
		return -1;
	size_t n = raw->len - 8;
	token_reader r = {(const unsigned char *)raw->data + n, (const unsigned char *)raw->data + raw->len, 0};
	if (token_get_u64(&r) != checksum(raw->data, n))
		return -1;
	raw->len = n;
	return 0;
}

void token_reader_init(token_reader *r, const buf *raw)
{
	r->p = (const unsigned char *)raw->data;
	r->end = r->p + raw->len;
	r->bad = 0;
}

int token_get_u8(token_reader *r)
{
	if (r->p >= r->end) {
		r->bad = 1;
		return -1;
	}
	return *r->p++;
}

uint64_t token_get_u64(token_reader *r)
{
	if (r->end - r->p < 8) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += 8;
	return v;
}

const char *token_get_str(token_reader *r, size_t *len)
{
	if (r->end - r->p < 4) {
		r->bad = 1;
		return NULL;
	}
	uint32_t n = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
	r->p += 4;
	if ((size_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	const char *s = (const char *)r->p;
	r->p += n;
	*len = n;
	return s;
}

int token_reader_done(const token_reader *r) { return !r->bad && r->p == r->end; }
