/*
 * json.h - small strict JSON reader (RFC 8259) into an arena DOM, plus a compact writer.
 *
 * Duroxide keeps every history event and queue work item as JSON text. The engine
 * parses them to find pending work, failure details and timestamps; the Lua binding
 * turns the DOM into tables. Key order is preserved and the writer emits the compact
 * serde form (no spaces), so re-emitting a parsed item yields what Duroxide wrote.
 */
#ifndef DUROX_UTIL_JSON_H
#define DUROX_UTIL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "buf.h"

typedef enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT
} json_type;

typedef struct json json;
struct json {
	json_type type;
	/* NUMBER: raw text (num/len) and, when it is an integer in int64 range, is_int = 1 and i set. */
	/* STRING: decoded UTF-8 in str/len (may contain NUL). */
	const char *str;
	size_t len;
	int is_int;
	int64_t i;
	double d;
	/* ARRAY/OBJECT: children in order; for OBJECT each child has key/keylen. */
	json *child;
	json *next;
	size_t count;
	const char *key;
	size_t keylen;
};

/* Parses text[0..len) into a DOM allocated from a. Returns the root, or NULL with a
 * one-line message in err (e.g. "invalid JSON at byte 17: expected ':'"). Nesting
 * deeper than 256 levels is rejected. */
json *json_parse(arena *a, const char *text, size_t len, char *err, size_t errlen);

/* Object member lookup by key (first match) or NULL; NULL-safe for o. */
const json *json_get(const json *o, const char *key);
/* Array element or NULL. */
const json *json_at(const json *a, size_t idx);
/* String value of o[key] as a NUL-terminated pointer into the DOM, or NULL if absent / not a string. */
const char *json_get_str(const json *o, const char *key);
/* Integer value of o[key]; returns 1 and sets *out when present and an integer, else 0. */
int json_get_i64(const json *o, const char *key, int64_t *out);
/* First member of an object (externally tagged serde enums: {"Variant":{...}}) or NULL. */
const json *json_first(const json *o);

/* Writes v in compact form. */
void json_emit(buf *b, const json *v);

#endif
