/*
 * names.c - the names every layer shares: result codes, instance statuses, failure kinds,
 * filter fields and their value types, and listing orders (declared in durox.h and
 * store/provider.h). They sit below both the engine and the store providers, so a provider
 * can name a status or a failure kind without calling up into the engine. No dependencies
 * beyond libc.
 */
#define _POSIX_C_SOURCE 200809L
#include <strings.h>

#include "durox.h"
#include "store/provider.h"

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
	case DUROX_EGONE: return "GONE";
	default: return "UNKNOWN";
	}
}

static const char *const status_names[] = {"NotFound",       "Running", "Completed", "Failed",
                                           "ContinuedAsNew", "Unknown", "Pending"};

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

const char *durox_version(void) { return DUROX_VERSION; }

int durox_version_number(void) { return DUROX_VERSION_NUMBER; }
