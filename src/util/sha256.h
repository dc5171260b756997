/*
 * sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), self-contained (no OpenSSL).
 * Used for the audit log's hash chain and for webhook signatures.
 */
#ifndef DUROX_UTIL_SHA256_H
#define DUROX_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

typedef struct sha256_ctx {
	uint32_t h[8];
	uint64_t bits; /* message length so far, in bits */
	uint8_t block[64];
	size_t used; /* bytes in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *p, size_t n);
/* Writes the 32-byte digest to out; c must be initialised again before reuse. */
void sha256_final(sha256_ctx *c, uint8_t out[SHA256_LEN]);
/* One-shot digest of p[0..n). */
void sha256(const void *p, size_t n, uint8_t out[SHA256_LEN]);
/* HMAC-SHA256 of msg[0..n) under key[0..klen) (any key length). */
void hmac_sha256(const void *key, size_t klen, const void *msg, size_t n, uint8_t out[SHA256_LEN]);
/* Lower-case hex of d[0..n) into out (2n + 1 bytes, NUL-terminated). */
void hex_encode(const uint8_t *d, size_t n, char *out);

#endif
