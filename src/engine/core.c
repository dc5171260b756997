/*
 * core.c - the engine handle: open/close, error messages, configuration, and the
 * name tables for statuses, failure kinds, fields and orders shared with the binding.
 * Relies on the store providers (store_sqlite_open). Used by every engine file.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/internal.h"

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

const char *durox_code_name(int rc)
{
	switch (rc) {
	case DUROX_OK: return "OK";
	case DUROX_ENOTFOUND: return "NOTFOUND";
	case DUROX_EBUSY: return "BUSY";
	case DUROX_EDENIED: return "DENIED";
	case DUROX_EINVALID: return "INVALID";
	case DUROX_ELIMIT: return "LIMIT";
	case DUROX_EIO: return "IO";
	case DUROX_ENOMEM: return "NOMEM";
	case DUROX_EUNSUPPORTED: return "UNSUPPORTED";
	case DUROX_ECORRUPT: return "CORRUPT";
	case DUROX_EABORT: return "ABORT";
	case DUROX_ECONFLICT: return "CONFLICT";
	case DUROX_ETIMEOUT: return "TIMEOUT";
	default: return "UNKNOWN";
	}
}

static const char *const status_names[] = {"NotFound", "Running", "Completed", "Failed", "ContinuedAsNew", "Unknown"};

const char *durox_status_name(int status)
{
	return status >= 0 && status < DUROX_STATUS__COUNT ? status_names[status] : NULL;
}

int durox_status_parse(const char *name)
{
	for (int i = 0; i < DUROX_STATUS__COUNT; i++)
		if (strcasecmp(name, status_names[i]) == 0)
			return i;
	return -1;
}

static const char *const kind_names[] = {
        "", "application", "cancelled", "poison", "nondeterminism", "infrastructure", "configuration"};

const char *durox_failure_kind_name(int kind)
{
	return kind >= 0 && kind < DUROX_FAILURE__COUNT ? kind_names[kind] : NULL;
}

int durox_failure_kind_parse(const char *name)
{
	for (int i = 1; i < DUROX_FAILURE__COUNT; i++)
		if (strcasecmp(name, kind_names[i]) == 0)
			return i;
	if (strcasecmp(name, "canceled") == 0)
		return DUROX_FAILURE_CANCELLED;
	return -1;
}

static const char *const field_names[] = {"status",          "orchestration_name", "version",      "instance_id",
                                          "parent_instance", "created_at",         "updated_at",   "completed_at",
                                          "custom_status",   "execution_count",    "failure_kind", "text"};

const char *durox_field_name(int field) { return field >= 0 && field < DUROX_FIELD__COUNT ? field_names[field] : NULL; }

int durox_field_parse(const char *name)
{
	for (int i = 0; i < DUROX_FIELD__COUNT; i++)
		if (strcasecmp(name, field_names[i]) == 0)
			return i;
	static const struct {
		const char *alias;
		int field;
	} aliases[] = {{"name", DUROX_FIELD_ORCHESTRATION_NAME},
	               {"id", DUROX_FIELD_INSTANCE_ID},
	               {"instance", DUROX_FIELD_INSTANCE_ID},
	               {"parent", DUROX_FIELD_PARENT_INSTANCE},
	               {"orchestration_version", DUROX_FIELD_VERSION},
	               {"executions", DUROX_FIELD_EXECUTION_COUNT},
	               {"kind", DUROX_FIELD_FAILURE_KIND}};
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
		if (strcasecmp(name, aliases[i].alias) == 0)
			return aliases[i].field;
	return -1;
}

field_type durox_field_type(int field)
{
	switch (field) {
	case DUROX_FIELD_CREATED_AT:
	case DUROX_FIELD_UPDATED_AT:
	case DUROX_FIELD_COMPLETED_AT: return FT_TIME;
	case DUROX_FIELD_EXECUTION_COUNT: return FT_INT;
	default: return FT_TEXT;
	}
}

static const char *const order_names[] = {"CreatedAt", "UpdatedAt", "InstanceId", "OrchestrationName"};

const char *durox_order_name(int order) { return order >= 0 && order < 4 ? order_names[order] : NULL; }

int durox_order_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(name, order_names[i]) == 0)
			return i;
	return -1;
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
		snprintf(errbuf, errlen, "no store URL given (expected sqlite:PATH)");
		return DUROX_EINVALID;
	}
	store *st = NULL;
	int rc;
	if (strncmp(url, "sqlite://", 9) == 0)
		rc = store_sqlite_open(url + 9, opts, &st, errbuf, errlen);
	else if (strncmp(url, "sqlite:", 7) == 0)
		rc = store_sqlite_open(url + 7, opts, &st, errbuf, errlen);
	else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
		snprintf(errbuf, errlen, "PostgreSQL stores are not supported by this build yet (only sqlite:PATH)");
		return DUROX_EUNSUPPORTED;
	} else {
		snprintf(errbuf, errlen, "unrecognised store URL '%s' (expected sqlite:PATH or sqlite::memory:)", url);
		return DUROX_EINVALID;
	}
	if (rc != DUROX_OK)
		return rc;
	durox *dx = calloc(1, sizeof *dx);
	if (dx == NULL) {
		st->vt->close(st);
		snprintf(errbuf, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	dx->st = st;
	dx->cfg = (durox_config){1, 1, 10000, 1000, 24, 5, 60000, 60000, 86400000, 10, 5};
	*out = dx;
	return DUROX_OK;
}

void durox_close(durox *dx)
{
	if (dx == NULL)
		return;
	metrics_cache_free(dx->metrics);
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
