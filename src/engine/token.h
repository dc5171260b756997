/*
 * token.h - opaque continuation tokens (page tokens of listings and histories).
 * A token is base64url(payload || checksum). The payload is built with the put_*
 * helpers and read back with a token_reader; the checksum catches truncated or
 * altered tokens so they fail with a clear message instead of a wrong page.
 */
#ifndef DUROX_ENGINE_TOKEN_H
#define DUROX_ENGINE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/buf.h"

void token_put_u64(buf *b, uint64_t v);
void token_put_str(buf *b, const char *s);
/* Appends n bytes with their length (read back with token_get_str). */
void token_put_bytes(buf *b, const void *p, size_t n);
/* Seals payload b into a token string allocated from a; NULL when out of memory. */
const char *token_seal(arena *a, buf *b);
/* Decodes and verifies token into raw (payload only). 0, or -1 when malformed. */
int token_open(const char *token, buf *raw);

typedef struct token_reader {
	const unsigned char *p, *end;
	int bad; /* set when a read ran past the end */
} token_reader;

void token_reader_init(token_reader *r, const buf *raw);
int token_get_u8(token_reader *r);
uint64_t token_get_u64(token_reader *r);
/* Returns a pointer into the payload (not NUL-terminated) and its length; NULL when bad. */
const char *token_get_str(token_reader *r, size_t *len);
/* Nonzero when every byte was read and none was missing. */
int token_reader_done(const token_reader *r);

#endif
