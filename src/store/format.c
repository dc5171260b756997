/*
 * format.c - classification of Duroxide ErrorDetails (see format.h). The variants are
 * serde's externally tagged enum: Application{kind,message,retryable} where kind is a
 * string or {"Cancelled":{"reason"}}; Infrastructure; Configuration{kind:"Nondeterminism"};
 * Poison. The display prefixes are those of ErrorDetails::display_message.
 */
#include "format.h"

#include <string.h>

#include "durox.h"

int format_failure_kind_details(const json *details)
{
	const json *v = json_first(details);
	if (v == NULL)
		return DUROX_FAILURE_NONE;
	if (v->keylen == 11 && memcmp(v->key, "Application", 11) == 0) {
		const json *kind = json_get(v, "kind");
		if (kind != NULL && kind->type == JSON_OBJECT && json_get(kind, "Cancelled") != NULL)
			return DUROX_FAILURE_CANCELLED;
		return DUROX_FAILURE_APPLICATION;
	}
	if (v->keylen == 6 && memcmp(v->key, "Poison", 6) == 0)
		return DUROX_FAILURE_POISON;
	if (v->keylen == 14 && memcmp(v->key, "Infrastructure", 14) == 0)
		return DUROX_FAILURE_INFRASTRUCTURE;
	if (v->keylen == 13 && memcmp(v->key, "Configuration", 13) == 0) {
		const char *kind = json_get_str(v, "kind");
		if (kind != NULL && strcmp(kind, "Nondeterminism") == 0)
			return DUROX_FAILURE_NONDETERMINISM;
		return DUROX_FAILURE_CONFIGURATION;
	}
	return DUROX_FAILURE_NONE;
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int format_failure_kind_event(const char *event_json, size_t len)
{
	if (event_json == NULL)
		return DUROX_FAILURE_NONE;
	arena a;
	arena_init(&a);
	json *ev = json_parse(&a, event_json, len, NULL, 0);
	int kind = format_failure_kind_details(json_get(ev, "details"));
	arena_release(&a);
	return kind;
}

int format_failure_kind(const char *event_json, size_t len, const char *output)
{
	return format_failure_kind_from(format_failure_kind_event(event_json, len), output);
}

int format_failure_kind_from(int event_kind, const char *output)
{
	if (event_kind != DUROX_FAILURE_NONE)
		return event_kind;
	if (output != NULL) {
		if (starts(output, "canceled: "))
			return DUROX_FAILURE_CANCELLED;
		if (starts(output, "poison: "))
			return DUROX_FAILURE_POISON;
		if (starts(output, "nondeterministic"))
			return DUROX_FAILURE_NONDETERMINISM;
		if (starts(output, "infrastructure:"))
			return DUROX_FAILURE_INFRASTRUCTURE;
	}
	return DUROX_FAILURE_APPLICATION;
}
