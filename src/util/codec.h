/*
 * codec.h - base64url (RFC 4648 section 5, no padding) and FNV-1a hashing.
 * Used for opaque page tokens (which carry a checksum and the fingerprint of the
 * filter and order they were issued for) and for job fingerprints.
 */
#ifndef DUROX_UTIL_CODEC_H
#define DUROX_UTIL_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Appends the base64url encoding of p[0..n) to b (no padding). */
void b64url_encode(buf *b, const void *p, size_t n);
/* Decodes s[0..n) (base64url, padding optional) into b. Returns 0, or -1 on an invalid character or length. */
int b64url_decode(buf *b, const char *s, size_t n);

#define FNV1A64_INIT 0xcbf29ce484222325ULL
/* Continues an FNV-1a 64-bit hash over p[0..n). */
uint64_t fnv1a64(uint64_t h, const void *p, size_t n);

#endif
