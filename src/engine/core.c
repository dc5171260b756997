/*
 * core.c - the engine handle: open/close, error messages and configuration. Opens its
 * store through the provider registry (store_open, store/registry.c) and never names a
 * provider; the shared name tables live in util/names.c. Used by every engine file.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/access.h"

int dx_fail(durox *dx, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dx->err, sizeof dx->err, fmt, ap);
	va_end(ap);
	return rc;
}

void durox_set_error(durox *dx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(dx->err, sizeof dx->err, fmt, ap);
	va_end(ap);
}

int dx_store_fail(durox *dx, int rc)
{
	if (dx->st->err[0] != '\0')
		snprintf(dx->err, sizeof dx->err, "%s", dx->st->err);
	else if (dx->err[0] == '\0')
		snprintf(dx->err, sizeof dx->err, "store operation failed (%s)", durox_code_name(rc));
	dx->st->err[0] = '\0';
	return rc;
}

void dx_clear(durox *dx)
{
	dx->err[0] = '\0';
	dx->st->err[0] = '\0';
}

/* ---- interruption ----------------------------------------------------------------- */

/* The handles open in this process, for durox_interrupt_all: slots read by a signal handler,
 * so atomic pointers (lock-free) and a handle leaves its slot before it is closed. Beyond
 * MAX_OPEN handles, the newest are not interruptible by durox_interrupt_all. */
#define MAX_OPEN 256
static _Atomic(durox *) open_handles[MAX_OPEN];

static void register_handle(durox *dx)
{
	for (int i = 0; i < MAX_OPEN; i++) {
		durox *expected = NULL;
		if (atomic_compare_exchange_strong(&open_handles[i], &expected, dx))
			return;
	}
}

static void unregister_handle(durox *dx)
{
	for (int i = 0; i < MAX_OPEN; i++) {
		durox *expected = dx;
		if (atomic_compare_exchange_strong(&open_handles[i], &expected, NULL))
			return;
	}
}

void durox_interrupt(durox *dx)
{
	if (dx != NULL && dx->st->vt->interrupt != NULL)
		dx->st->vt->interrupt(dx->st);
}

void durox_interrupt_all(void)
{
	for (int i = 0; i < MAX_OPEN; i++)
		durox_interrupt(atomic_load(&open_handles[i]));
}

int durox_open(const char *url, const durox_open_options *opts, durox **out, char *errbuf, size_t errlen)
{
	char scratch[512];
	if (errbuf == NULL || errlen == 0) {
		errbuf = scratch;
		errlen = sizeof scratch;
	}
	errbuf[0] = '\0';
	*out = NULL;
	if (url == NULL) {
		snprintf(errbuf, errlen, "no store URL given (expected sqlite:PATH or postgres://...)");
		return DUROX_EINVALID;
	}
	const durox_access_policy *pol = opts != NULL ? opts->policy : NULL;
	store *st = NULL;
	int rc = store_open(url, opts, &st, errbuf, errlen);
	durox *dx = NULL;
	if (rc == DUROX_OK && (dx = calloc(1, sizeof *dx)) == NULL) {
		st->vt->close(st);
		snprintf(errbuf, errlen, "out of memory");
		rc = DUROX_ENOMEM;
	}
	if (rc != DUROX_OK) {
		/* the handle owns the policy from the call on, also when it fails */
		if (pol != NULL && pol->release != NULL)
			pol->release(pol->ud);
		return rc;
	}
	dx->st = st;
	dx->cfg = (durox_config)DUROX_CONFIG_INIT;
	/* access control and the audit log; the policy is released by durox_close from here on */
	rc = access_init(dx, opts, errbuf, errlen);
	if (rc != DUROX_OK) {
		durox_close(dx);
		return rc;
	}
	register_handle(dx);
	*out = dx;
	return DUROX_OK;
}

void durox_close(durox *dx)
{
	if (dx == NULL)
		return;
	unregister_handle(dx);
	metrics_cache_free(dx->metrics);
	access_free(dx);
	feed_state_free(dx->changes);
	dx->st->vt->close(dx->st);
	free(dx);
}

const char *durox_errmsg(const durox *dx) { return dx == NULL ? "no handle" : dx->err; }

void durox_get_store_info(durox *dx, durox_store_info *info) { *info = dx->st->info; }

void durox_get_config(durox *dx, durox_config *cfg) { *cfg = dx->cfg; }

int durox_set_config(durox *dx, const durox_config *cfg)
{
	dx_clear(dx);
	if (cfg->max_list_instances == 0)
		return dx_fail(dx, DUROX_EINVALID, "max_list_instances must be at least 1");
	if (cfg->max_bulk_operations == 0)
		return dx_fail(dx, DUROX_EINVALID, "max_bulk_operations must be at least 1");
	if (cfg->max_attempts == 0)
		return dx_fail(dx, DUROX_EINVALID, "max_attempts must be at least 1");
	if (cfg->near_poison_attempts == 0 || cfg->near_poison_attempts > cfg->max_attempts)
		return dx_fail(dx, DUROX_EINVALID, "near_poison_attempts must be between 1 and max_attempts (%u)",
		               (unsigned)cfg->max_attempts);
	if (cfg->max_payload_bytes == 0 || cfg->max_id_bytes == 0)
		return dx_fail(dx, DUROX_EINVALID, "max_payload_bytes and max_id_bytes must be at least 1");
	int rc = access_check_config(dx, cfg);
	if (rc != DUROX_OK)
		return rc;
	dx->cfg = *cfg;
	return DUROX_OK;
}

int summary_copy(arena *a, durox_instance_summary *dst, const durox_instance_summary *src)
{
	*dst = *src;
#define DUP(f)                                                                                                         \
	if (src->f != NULL && (dst->f = arena_strdup(a, src->f)) == NULL)                                              \
		return DUROX_ENOMEM;
	DUP(instance_id)
	DUP(orchestration_name)
	DUP(version)
	DUP(parent_instance)
	DUP(error)
	DUP(custom_status)
#undef DUP
	return DUROX_OK;
}
