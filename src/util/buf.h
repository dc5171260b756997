/*
 * buf.h - growable byte buffer for building SQL text, JSON and messages.
 * Out-of-memory is sticky: after a failed growth every append is a no-op and
 * buf_oom() reports it once at the end, so builders do not check every call.
 */
#ifndef DUROX_UTIL_BUF_H
#define DUROX_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
	char *data; /* NUL-terminated while not oom; owned (free with buf_free) */
	size_t len;
	size_t cap;
	int oom;
} buf;

void buf_init(buf *b);
void buf_free(buf *b);                 /* accepts a zeroed or freed buf */
void buf_reset(buf *b);                /* len = 0, keeps capacity, clears oom */
int buf_reserve(buf *b, size_t extra); /* 0 ok, -1 oom */
void buf_add(buf *b, const void *p, size_t n);
void buf_adds(buf *b, const char *s);
void buf_addc(buf *b, char c);
void buf_addf(buf *b, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
void buf_addvf(buf *b, const char *fmt, va_list ap)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 0)))
#endif
        ;
void buf_addi64(buf *b, int64_t v);
/* Appends s as a JSON string literal (with quotes), escaping per RFC 8259. */
void buf_add_json_string(buf *b, const char *s, size_t n);
static inline int buf_oom(const buf *b) { return b->oom; }
/* Returns the string ("" when empty); valid until the next append. */
const char *buf_str(const buf *b);

#endif
