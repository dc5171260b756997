/*
 * registry.c - the provider registry: durox_open hands a store URL to store_open, which
 * picks the provider by URL scheme from the table below, so the engine never names a
 * provider. Also the helpers every provider shares (store_fail, the payload member list).
 * Relies on each provider's open function; used by src/engine/core.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/provider.h"

int store_fail(store *st, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof st->err, fmt, ap);
	va_end(ap);
	return rc;
}

const char *const store_payload_members[] = {"input", "output", "result", "data", "details", "value", "status", NULL};

/* One URL scheme. strip: the provider gets the URL after the prefix (else the whole URL). */
typedef struct provider_entry {
	const char *prefix;
	int strip;
	store_open_fn open;
} provider_entry;

static const provider_entry providers[] = {
        {"sqlite://", 1, store_sqlite_open},
        {"sqlite:", 1, store_sqlite_open},
        {"postgres://", 0, store_postgres_open},
        {"postgresql://", 0, store_postgres_open},
};

int store_open(const char *url, const durox_open_options *opts, store **out, char *err, size_t errlen)
{
	*out = NULL;
	for (size_t i = 0; i < sizeof providers / sizeof providers[0]; i++) {
		size_t n = strlen(providers[i].prefix);
		if (strncmp(url, providers[i].prefix, n) == 0)
			return providers[i].open(providers[i].strip ? url + n : url, opts, out, err, errlen);
	}
	snprintf(err, errlen,
	         "unrecognised store URL '%.200s' (expected sqlite:PATH, sqlite::memory: or postgres://...)", url);
	return DUROX_EINVALID;
}
