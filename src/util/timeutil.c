/*
 * timeutil.c - timestamp parsing and formatting (see timeutil.h). Pure functions over
 * the proleptic Gregorian calendar; no locale, no TZ environment.
 */
#define _POSIX_C_SOURCE 200809L
#include "timeutil.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static int digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
	if (at + count > n)
		return -1;
	int v = 0;
	for (size_t i = 0; i < count; i++) {
		char c = s[at + i];
		if (c < '0' || c > '9')
			return -1;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

int time_parse_iso(const char *s, size_t n, int64_t *ms)
{
	int y, mo, d, h = 0, mi = 0, se = 0;
	int64_t frac_ms = 0;
	size_t i = 0;
	if (digits(s, n, 0, 4, &y) || n < 10 || s[4] != '-' || digits(s, n, 5, 2, &mo) || s[7] != '-' ||
	    digits(s, n, 8, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	i = 10;
	if (i < n && (s[i] == ' ' || s[i] == 'T' || s[i] == 't')) {
		i++;
		if (digits(s, n, i, 2, &h) || i + 2 >= n || s[i + 2] != ':' || digits(s, n, i + 3, 2, &mi))
			return -1;
		i += 5;
		if (i < n && s[i] == ':') {
			if (digits(s, n, i + 1, 2, &se))
				return -1;
			i += 3;
			if (i < n && (s[i] == '.' || s[i] == ',')) {
				i++;
				size_t start = i;
				int64_t scale = 100;
				while (i < n && s[i] >= '0' && s[i] <= '9') {
					frac_ms += (s[i] - '0') * scale;
					scale /= 10;
					i++;
				}
				if (i == start)
					return -1;
			}
		}
		if (h > 23 || mi > 59 || se > 60)
			return -1;
	}
	int64_t offset_min = 0;
	if (i < n) {
		if (s[i] == 'Z' || s[i] == 'z') {
			i++;
		} else if (s[i] == '+' || s[i] == '-') {
			int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
			i++;
			if (digits(s, n, i, 2, &oh))
				return -1;
			i += 2;
			if (i < n && s[i] == ':') {
				if (digits(s, n, i + 1, 2, &om))
					return -1;
				i += 3;
			} else if (i + 2 <= n && digits(s, n, i, 2, &om) == 0) {
				i += 2;
			}
			if (oh > 23 || om > 59)
				return -1;
			offset_min = sign * (oh * 60 + om);
		}
	}
	if (i != n)
		return -1;
	int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
	*ms = ((days * 86400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + frac_ms;
	return 0;
}

int time_parse_duration(const char *s, size_t n, int64_t *ms)
{
	size_t i = 0;
	int64_t total = 0;
	int parts = 0;
	while (i < n) {
		if (s[i] == ' ') {
			i++;
			continue;
		}
		if (s[i] < '0' || s[i] > '9')
			return -1;
		int64_t v = 0;
		while (i < n && s[i] >= '0' && s[i] <= '9') {
			if (v > INT64_MAX / 10 - 10)
				return -1;
			v = v * 10 + (s[i] - '0');
			i++;
		}
		int64_t unit;
		if (i + 1 < n && s[i] == 'm' && s[i + 1] == 's') {
			unit = 1;
			i += 2;
		} else if (i < n) {
			switch (s[i]) {
			case 's': unit = 1000; break;
			case 'm': unit = 60000; break;
			case 'h': unit = 3600000; break;
			case 'd': unit = 86400000; break;
			case 'w': unit = 7 * 86400000LL; break;
			default: return -1;
			}
			i++;
		} else {
			return -1; /* a bare number is not a duration */
		}
		if (v > (INT64_MAX - total) / unit)
			return -1;
		total += v * unit;
		parts++;
	}
	if (parts == 0)
		return -1;
	*ms = total;
	return 0;
}

static const char *skip_sp(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int time_parse_user(const char *s, int64_t now, int64_t *ms, char *err, size_t errlen)
{
	const char *p = skip_sp(s);
	size_t n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		goto bad;
	if (time_parse_iso(p, n, ms) == 0)
		return 0;
	/* integer milliseconds */
	size_t k = 0;
	if (p[0] == '-' && n > 1)
		k = 1;
	while (k < n && isdigit((unsigned char)p[k]))
		k++;
	if (k == n && !(p[0] == '-')) {
		int64_t v = 0;
		for (size_t j = 0; j < n; j++) {
			if (v > (INT64_MAX - 9) / 10)
				goto bad;
			v = v * 10 + (p[j] - '0');
		}
		*ms = v;
		return 0;
	}
	/* now, now(), now - 1h, now()+1h, -30m, +2h */
	int64_t base = now;
	const char *q = p, *end = p + n;
	if ((size_t)(end - q) >= 3 && strncmp(q, "now", 3) == 0) {
		q += 3;
		if ((size_t)(end - q) >= 2 && q[0] == '(' && q[1] == ')')
			q += 2;
		while (q < end && *q == ' ')
			q++;
		if (q == end) {
			*ms = now;
			return 0;
		}
	}
	if (q < end && (*q == '-' || *q == '+')) {
		int sign = *q == '-' ? -1 : 1;
		q++;
		while (q < end && *q == ' ')
			q++;
		int64_t d;
		/* d >= 0; a result outside the int64 range is not a time */
		if (time_parse_duration(q, (size_t)(end - q), &d) == 0 &&
		    (sign > 0 ? base <= INT64_MAX - d : base >= INT64_MIN + d)) {
			*ms = sign > 0 ? base + d : base - d;
			return 0;
		}
	}
bad:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen,
		         "invalid time '%s' (expected ISO-8601 like '2026-01-31T12:00:00Z', milliseconds since the "
		         "epoch, or a relative time like '-30m' or 'now-1h')",
		         s);
	return -1;
}

void time_format_iso(int64_t ms, char *out, size_t outlen)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int msec = (int)(ms - secs * 1000);
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(out, outlen, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600),
	         (int)(rem / 60 % 60), (int)(rem % 60), msec);
}

void time_format_sql(int64_t ms, char *out, size_t outlen)
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t rem = secs - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(out, outlen, "%04" PRId64 "-%02u-%02u %02d:%02d:%02d", y, m, d, (int)(rem / 3600),
	         (int)(rem / 60 % 60), (int)(rem % 60));
}
