/*
 * query.h - the query language parser's engine-internal entry point (query.c), with the
 * current time as a parameter so that tests and the fuzzer resolve relative times
 * deterministically. The public entry points are durox_filter_parse and
 * durox_filter_add_query (durox.h); the grammar is in docs/query-language.md.
 */
#ifndef DUROX_ENGINE_QUERY_H
#define DUROX_ENGINE_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "durox.h"

#define QUERY_MAX_LEN 8192       /* bytes of query text */
#define QUERY_MAX_CONDITIONS 256 /* field tests in one query */
#define QUERY_MAX_LEVELS 16      /* nesting levels of the tree (see query.c); 20 is the most SQLite parses */
#define QUERY_MAX_PARENS 64      /* nested parentheses in the text (redundant ones included) */
#define QUERY_MAX_IN 500         /* values in one IN list */

/* Parses text and ANDs the result into f's root, resolving relative times against now (ms).
 * Returns DUROX_OK, DUROX_EINVALID (message in errbuf: "query error at position N: ...")
 * or DUROX_ENOMEM. On failure f's tree and error are unchanged. */
int query_parse(durox_filter *f, const char *text, int64_t now, char *errbuf, size_t errlen);

#endif
