/*
 * timeutil.h - timestamps as Duroxide stores them and as users type them.
 *
 * All times inside duroxlua are int64 milliseconds since the Unix epoch (UTC).
 * Stores hold TEXT 'YYYY-MM-DD HH:MM:SS' (SQLite CURRENT_TIMESTAMP), integer ms and
 * PostgreSQL timestamptz text; users type ISO-8601, integer ms or relative times.
 */
#ifndef DUROX_UTIL_TIMEUTIL_H
#define DUROX_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Current wall-clock time in ms. */
int64_t time_now_ms(void);
/* Monotonic clock in ms, for measuring durations and timeouts. */
int64_t time_mono_ms(void);

/* Parses an absolute timestamp: 'YYYY-MM-DD', 'YYYY-MM-DD[ T]HH:MM[:SS[.f+]]' followed by
 * nothing (UTC), 'Z', or a zone offset '+HH', '+HHMM', '+HH:MM' (or '-'). Returns 0 and
 * sets *ms, or -1 when the text is not such a timestamp. */
int time_parse_iso(const char *s, size_t n, int64_t *ms);

/* Parses a duration like '90s', '1h30m', '500ms', '2d', '1w' (units ms s m h d w) into ms.
 * Returns 0 or -1. A bare number is not a duration. */
int time_parse_duration(const char *s, size_t n, int64_t *ms);

/* Parses what a user may give as a point in time: an absolute timestamp (above), an integer
 * (ms since the epoch), 'now', a relative time '-30m' / '+2h' (from now), or
 * 'now-1h' / 'now() - 1h'. Returns 0 and sets *ms, or -1 with a message in err. */
int time_parse_user(const char *s, int64_t now, int64_t *ms, char *err, size_t errlen);

/* Formats ms as ISO-8601 UTC with milliseconds: '2026-11-26T09:43:25.123Z' (out >= 32 bytes). */
void time_format_iso(int64_t ms, char *out, size_t outlen);
/* Formats ms as 'YYYY-MM-DD HH:MM:SS' UTC, the SQLite CURRENT_TIMESTAMP form (out >= 20 bytes). */
void time_format_sql(int64_t ms, char *out, size_t outlen);

#endif
