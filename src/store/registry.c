/*
 * registry.c - the provider registry: durox_open hands a store URL to store_open, which
 * picks the provider by URL scheme from the table below, so the engine never names a
 * provider. Also the helpers every provider shares (store_fail, the payload member list).
 * Relies on each provider's open function; used by src/engine/core.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/provider.h"
#include "util/buf.h"

int store_fail(store *st, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->err, sizeof st->err, fmt, ap);
	va_end(ap);
	return rc;
}

/* Whether the parameter name k (n bytes, percent-encoded as libpq accepts it) is "password". */
static int is_password_key(const char *k, size_t n)
{
	static const char want[] = "password";
	size_t w = 0;
	for (size_t i = 0; i < n; i++, w++) {
		int c = (unsigned char)k[i];
		if (c == '%' && i + 2 < n) {
			char hex[3] = {k[i + 1], k[i + 2], '\0'};
			char *end = NULL;
			long v = strtol(hex, &end, 16);
			if (end != hex + 2)
				return 0;
			c = (int)v;
			i += 2;
		}
		if (w >= sizeof want - 1 || c != want[w])
			return 0;
	}
	return w == sizeof want - 1;
}

char *store_mask_url(const char *url)
{
	buf b;
	buf_init(&b);
	const char *p = strstr(url, "://");
	const char *auth = p != NULL ? p + 3 : url;
	buf_add(&b, url, (size_t)(auth - url));
	size_t alen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (const char *q = auth; q < auth + alen; q++)
		if (*q == '@')
			at = q;
	if (at != NULL) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon != NULL) {
			buf_add(&b, auth, (size_t)(colon - auth));
			buf_adds(&b, ":***");
			buf_add(&b, at, (size_t)(auth + alen - at));
		} else {
			buf_add(&b, auth, alen);
		}
	} else {
		buf_add(&b, auth, alen);
	}
	const char *rest = auth + alen;
	/* the path (the database), then the parameters: mask password=... */
	size_t path = strcspn(rest, "?#");
	buf_add(&b, rest, path);
	rest += path;
	while (*rest != '\0') {
		size_t seg = strcspn(rest + 1, "&#") + 1; /* the separator and one parameter */
		size_t key = strcspn(rest + 1, "=&#");
		if ((rest[0] == '?' || rest[0] == '&') && rest[1 + key] == '=' && is_password_key(rest + 1, key)) {
			buf_add(&b, rest, key + 2);
			buf_adds(&b, "***");
		} else {
			buf_add(&b, rest, seg);
		}
		rest += seg;
	}
	if (buf_oom(&b)) {
		buf_free(&b);
		return NULL;
	}
	return b.data != NULL ? b.data : strdup("");
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
	/* the URL may hold a password (a misspelt postgres:// scheme): never show one */
	char *shown = store_mask_url(url);
	snprintf(err, errlen,
	         "unrecognised store URL '%.200s' (expected sqlite:PATH, sqlite::memory: or postgres://...)",
	         shown != NULL ? shown : "(out of memory)");
	free(shown);
	return DUROX_EINVALID;
}
