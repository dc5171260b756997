/*
 * format.h - facts of Duroxide's stored formats that every provider needs:
 * classifying ErrorDetails into a failure kind. Used by the SQLite provider's SQL
 * function durox_failure_kind() and by the engine when it reads history.
 */
#ifndef DUROX_STORE_FORMAT_H
#define DUROX_STORE_FORMAT_H

#include <stddef.h>

#include "util/json.h"

/* Classifies an ErrorDetails value ({"Application":{...}} ...) into a durox_failure_kind;
 * DUROX_FAILURE_NONE when details is not an ErrorDetails object. */
int format_failure_kind_details(const json *details);

/* Classifies a failure from the OrchestrationFailed event JSON (may be NULL) and, when that
 * is absent or unreadable, from the error text Duroxide stored in executions.output
 * (its display form: "canceled: ...", "poison: ...", ...). Never NONE. */
int format_failure_kind(const char *event_json, size_t len, const char *output);
/* The two halves of format_failure_kind: the kind the event's details give (NONE when the
 * event is NULL or has no ErrorDetails), and the kind from that and the stored output. */
int format_failure_kind_event(const char *event_json, size_t len);
int format_failure_kind_from(int event_kind, const char *output);

#endif
