/*
 * postgres.c - the PostgreSQL store provider's connection: parsing the store URL (libpq's
 * URI plus our own schema=, state_schema= and statement_timeout=, removed before libpq
 * sees it), masking passwords, connecting with application_name=duroxlua and connect and
 * statement timeouts, the prepared-statement cache of each connection, the single-row-mode
 * query runner with one reconnect after a dropped connection, SQLSTATE to durox code
 * mapping, and checking that the schema is Duroxide's (tables, columns, procedures,
 * migration). Queries live in postgres_read.c, postgres_ops.c, postgres_jobs.c and
 * postgres_metrics.c. Used by the engine through store_postgres_open() (registry.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/ops.h"
#include "store/postgres_index.h"
#include "store/provider_metrics.h"
#include "util/hmap.h"

#define DEFAULT_CONNECT_TIMEOUT_S 10
#define DEFAULT_STATEMENT_TIMEOUT_MS 30000
#define DEFAULT_LOCK_TIMEOUT_MS 5000
#define IDLE_IN_TXN_TIMEOUT_MS 60000

/* ---- parameters ------------------------------------------------------------------- */

void pqp_init(pqp *p) { memset(p, 0, sizeof *p); }

void pqp_free(pqp *p)
{
	free(p->v);
	free(p->num);
	memset(p, 0, sizeof *p);
}

static int pqp_grow(pqp *p)
{
	if (p->oom)
		return -1;
	if (p->n < p->cap)
		return 0;
	int ncap = p->cap ? p->cap * 2 : 16;
	const char **nv = malloc((size_t)ncap * sizeof *nv);
	char(*nn)[32] = malloc((size_t)ncap * sizeof *nn);
	if (nv == NULL || nn == NULL) {
		free(nv);
		free(nn);
		p->oom = 1;
		return -1;
	}
	/* numbers live in num: move them and repoint their values */
	for (int i = 0; i < p->n; i++) {
		if (p->v[i] == p->num[i]) {
			memcpy(nn[i], p->num[i], sizeof nn[i]);
			nv[i] = nn[i];
		} else {
			nv[i] = p->v[i];
		}
	}
	free(p->v);
	free(p->num);
	p->v = nv;
	p->num = nn;
	p->cap = ncap;
	return 0;
}

void pqp_text(pqp *p, const char *v)
{
	if (pqp_grow(p) == 0)
		p->v[p->n++] = v;
}

void pqp_null(pqp *p) { pqp_text(p, NULL); }

void pqp_int(pqp *p, int64_t v)
{
	if (pqp_grow(p) != 0)
		return;
	snprintf(p->num[p->n], sizeof p->num[p->n], "%lld", (long long)v);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

void pqp_time_ms(pqp *p, int64_t ms)
{
	if (pqp_grow(p) != 0)
		return;
	time_t sec = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		sec -= 1;
	}
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t k = strftime(p->num[p->n], sizeof p->num[p->n], "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(p->num[p->n] + k, sizeof p->num[p->n] - k, ".%03d+00", frac);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

void pqp_double(pqp *p, double v)
{
	if (pqp_grow(p) != 0)
		return;
	snprintf(p->num[p->n], sizeof p->num[p->n], "%.17g", v);
	p->v[p->n] = p->num[p->n];
	p->n++;
}

/* ---- column readers ------------------------------------------------------------------ */

int pq_isnull(const PGresult *r, int col) { return PQgetisnull(r, 0, col); }

const char *pq_text(const PGresult *r, int col) { return PQgetisnull(r, 0, col) ? NULL : PQgetvalue(r, 0, col); }

int64_t pq_int(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? 0 : (int64_t)strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

int64_t pq_time(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? DUROX_NO_TIME : (int64_t)strtoll(PQgetvalue(r, 0, col), NULL, 10);
}

int pq_bool(const PGresult *r, int col) { return !PQgetisnull(r, 0, col) && PQgetvalue(r, 0, col)[0] == 't'; }

double pq_double(const PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? 0.0 : strtod(PQgetvalue(r, 0, col), NULL);
}

int pq_status_of(const char *t)
{
	int st = t != NULL ? durox_status_parse(t) : -1;
	return st < 0 ? DUROX_STATUS_UNKNOWN : st;
}

/* ---- URLs ----------------------------------------------------------------------------- */

static int valid_schema_name(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > PG_NAME_MAX)
		return 0;
	if (!(n[0] == '_' || (n[0] >= 'a' && n[0] <= 'z')))
		return 0;
	for (size_t i = 1; i < len; i++)
		if (!(n[i] == '_' || (n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9')))
			return 0;
	return 1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [s, s+n) into out (cap bytes); -1 when it does not fit or is malformed. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* What parse_url takes out of a store URL. */
typedef struct pg_url {
	char *uri; /* for libpq, without our parameters */
	char schema[PG_NAME_MAX + 1];
	char state_schema[PG_NAME_MAX + 1];
	int statement_timeout_ms; /* 0: not given */
	int has_connect_timeout;
} pg_url;

/* Splits url into libpq's URI and our parameters. Returns a durox code, message in err. */
static int parse_url(const char *url, pg_url *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	snprintf(out->schema, sizeof out->schema, "public");
	snprintf(out->state_schema, sizeof out->state_schema, "durox");
	const char *q = strchr(url, '?');
	const char *hash = strchr(url, '#');
	if (hash != NULL && (q == NULL || hash < q)) {
		snprintf(err, errlen, "store URL has a fragment ('#...'), which libpq does not accept");
		return DUROX_EINVALID;
	}
	buf b;
	buf_init(&b);
	buf_add(&b, url, q != NULL ? (size_t)(q - url) : strlen(url));
	int first = 1;
	int rc = DUROX_OK;
	if (q != NULL) {
		const char *p = q + 1;
		while (*p != '\0' && rc == DUROX_OK) {
			size_t n = strcspn(p, "&");
			const char *eq = memchr(p, '=', n);
			size_t klen = eq != NULL ? (size_t)(eq - p) : n;
			const char *val = eq != NULL ? eq + 1 : p + n;
			size_t vlen = (size_t)(p + n - val);
			char v[256];
			if (klen == 6 && strncmp(p, "schema", 6) == 0) {
				if (pct_decode(val, vlen, v, sizeof v) != 0 || !valid_schema_name(v)) {
					snprintf(err, errlen,
					         "invalid schema name '%.*s' in store URL (expected lower-case "
					         "letters, digits "
					         "and _, not starting with a digit, at most 63)",
					         (int)(vlen > 64 ? 64 : vlen), val);
					rc = DUROX_EINVALID;
				} else {
					memcpy(out->schema, v, strlen(v) + 1); /* valid: at most 63 bytes */
				}
			} else if (klen == 12 && strncmp(p, "state_schema", 12) == 0) {
				if (pct_decode(val, vlen, v, sizeof v) != 0 || !valid_schema_name(v)) {
					snprintf(err, errlen,
					         "invalid state_schema name '%.*s' in store URL (expected lower-case "
					         "letters, "
					         "digits and _, not starting with a digit, at most 63)",
					         (int)(vlen > 64 ? 64 : vlen), val);
					rc = DUROX_EINVALID;
				} else {
					memcpy(out->state_schema, v, strlen(v) + 1);
				}
			} else if (klen == 17 && strncmp(p, "statement_timeout", 17) == 0) {
				char *end = NULL;
				long ms = -1;
				if (pct_decode(val, vlen, v, sizeof v) == 0)
					ms = strtol(v, &end, 10);
				if (ms <= 0 || ms > 86400000 || end == NULL || *end != '\0') {
					snprintf(err, errlen,
					         "invalid statement_timeout '%.*s' in store URL (expected "
					         "milliseconds, 1 to "
					         "86400000)",
					         (int)(vlen > 32 ? 32 : vlen), val);
					rc = DUROX_EINVALID;
				} else {
					out->statement_timeout_ms = (int)ms;
				}
			} else {
				if (klen == 15 && strncmp(p, "connect_timeout", 15) == 0)
					out->has_connect_timeout = 1;
				buf_addc(&b, first ? '?' : '&');
				buf_add(&b, p, n);
				first = 0;
			}
			p += n;
			if (*p == '&')
				p++;
		}
	}
	if (rc == DUROX_OK && strcmp(out->schema, out->state_schema) == 0) {
		snprintf(
		        err, errlen,
		        "state_schema '%s' is the runtime's schema: duroxlua keeps its own tables in a schema of their "
		        "own (default durox)",
		        out->schema);
		rc = DUROX_EINVALID;
	}
	if (rc == DUROX_OK && buf_oom(&b)) {
		snprintf(err, errlen, "out of memory");
		rc = DUROX_ENOMEM;
	}
	if (rc != DUROX_OK) {
		buf_free(&b);
		return rc;
	}
	out->uri = b.data;
	return DUROX_OK;
}

/* ---- messages and errors ---------------------------------------------------------------- */

/* Copies a libpq message into dst as one line: newlines become "; ", the trailing ones and
 * the "ERROR:  "/"FATAL:  " severity prefixes go. */
static void one_line(char *dst, size_t cap, const char *msg)
{
	size_t o = 0;
	if (msg == NULL)
		msg = "";
	int last_sep = 1;
	for (const char *p = msg; *p != '\0' && o + 3 < cap; p++) {
		if (strncmp(p, "ERROR:  ", 8) == 0 || strncmp(p, "FATAL:  ", 8) == 0) {
			p += 7;
			continue;
		}
		if (*p == '\n' || *p == '\r' || *p == '\t') {
			if (!last_sep && p[1] != '\0' && p[1] != '\n') {
				dst[o++] = ';';
				dst[o++] = ' ';
			}
			last_sep = 1;
			continue;
		}
		dst[o++] = *p;
		last_sep = 0;
	}
	while (o > 0 && (dst[o - 1] == ' ' || dst[o - 1] == ';'))
		o--;
	dst[o] = '\0';
}

static int conn_bad(const pg_conn *pc) { return pc->c == NULL || PQstatus(pc->c) != CONNECTION_OK; }

/* The durox code of a SQLSTATE. */
static int code_of_sqlstate(const char *st)
{
	if (st == NULL)
		return DUROX_EIO;
	if (strcmp(st, "42501") == 0 || strcmp(st, "25006") == 0 || strncmp(st, "28", 2) == 0)
		return DUROX_EDENIED; /* insufficient privilege, read-only transaction, auth */
	if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0 ||
	    strcmp(st, "57014") == 0)
		return DUROX_EBUSY; /* serialization, deadlock, lock timeout, statement timeout */
	if (strcmp(st, "3F000") == 0 || strcmp(st, "42P01") == 0 || strcmp(st, "42883") == 0 ||
	    strcmp(st, "42703") == 0)
		return DUROX_EUNSUPPORTED; /* missing schema, table, function, column */
	if (strcmp(st, "P0001") == 0 || strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0)
		return DUROX_EINVALID; /* RAISE in a procedure, data exceptions, constraints */
	if (strncmp(st, "53", 2) == 0)
		return DUROX_ENOMEM;
	if (strcmp(st, "XX001") == 0 || strcmp(st, "XX002") == 0)
		return DUROX_ECORRUPT;
	return DUROX_EIO;
}

/* Records the failure of a statement on pc (res may be NULL: a send/connection failure). */
static int result_fail(pg_store *s, pg_conn *pc, const PGresult *res, const char *what)
{
	char msg[400];
	const char *st = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (conn_bad(pc)) {
		one_line(msg, sizeof msg, pc->c != NULL ? PQerrorMessage(pc->c) : "no connection");
		s->last_rc = DUROX_EIO;
		return store_fail(&s->base, DUROX_EIO,
		                  "%s failed: the connection to the PostgreSQL server was lost (%s)", what,
		                  msg[0] ? msg : "closed");
	}
	const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	one_line(msg, sizeof msg, primary != NULL ? primary : PQerrorMessage(pc->c));
	int rc = code_of_sqlstate(st);
	s->last_rc = rc;
	if (st != NULL && strcmp(st, "42P01") == 0 && s->db_oid[0] &&
	    (strstr(msg, "\"instances\"") != NULL || strstr(msg, "\"executions\"") != NULL ||
	     strstr(msg, "\"history\"") != NULL || strstr(msg, "\"orchestrator_queue\"") != NULL ||
	     strstr(msg, "\"worker_queue\"") != NULL)) {
		/* a table every Duroxide store has (checked at open) is missing: the schema was
		 * dropped under the handle */
		s->gone = 1;
		s->last_rc = DUROX_EGONE;
		return store_fail(&s->base, DUROX_EGONE, "store %s was dropped while it was open (%s); open it again",
		                  s->display, msg);
	}
	if (st != NULL && strcmp(st, "57014") == 0 && strstr(msg, "user request") != NULL) {
		s->last_rc = DUROX_EABORT; /* pg_interrupt: Ctrl-C, durox_interrupt */
		return store_fail(&s->base, DUROX_EABORT, "interrupted: %s stopped", what);
	}
	if (st != NULL && strcmp(st, "57014") == 0 && strstr(msg, "statement timeout") != NULL)
		return store_fail(&s->base, rc,
		                  "%s failed: the statement ran longer than the statement timeout (%d ms)", what,
		                  s->statement_timeout_ms);
	if (st != NULL && strcmp(st, "55P03") == 0)
		return store_fail(
		        &s->base, rc,
		        "store is busy: %s waited %d ms (the lock_timeout, busy_timeout_ms) for a lock another"
		        " session holds, such as the runtime's; retry later",
		        what, s->lock_timeout_ms);
	if (rc == DUROX_EDENIED && st != NULL && strcmp(st, "25006") == 0)
		return store_fail(&s->base, rc, "%s denied: the store is read-only here (%s)", what, msg);
	if (rc == DUROX_EDENIED)
		return store_fail(&s->base, rc, "%s denied: %s", what, msg);
	return store_fail(&s->base, rc, "%s failed: %s", what, msg);
}

/* ---- connections -------------------------------------------------------------------------- */

static void cache_clear(pg_conn *pc)
{
	for (int i = 0; i < PG_CACHE_SIZE; i++) {
		free(pc->cache[i].sql);
		pc->cache[i].sql = NULL;
	}
}

static void conn_close(pg_conn *pc)
{
	cache_clear(pc);
	PGcancel *cancel = pc->cancel;
	pc->cancel = NULL; /* before it is freed: a signal handler may look at it */
	if (cancel != NULL)
		PQfreeCancel(cancel);
	if (pc->c != NULL)
		PQfinish(pc->c);
	pc->c = NULL;
	free(pc->uri);
	free(pc->display);
	pc->uri = pc->display = NULL;
}

/* The server's notices (e.g. "relation ... already exists, skipping" of a CREATE ... IF NOT
 * EXISTS) are not errors and are nobody's business: libpq would print them on stderr. */
static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Connects pc (pc->uri) with our defaults before the URI's own parameters, so the URI can
 * override them. Returns a durox code with a one-line message in err. */
static int conn_open(pg_store *s, pg_conn *pc, char *err, size_t errlen)
{
	char timeout[16];
	snprintf(timeout, sizeof timeout, "%d", s->connect_timeout_s);
	const char *keys[] = {"application_name", "connect_timeout", "dbname", NULL};
	const char *vals[] = {"duroxlua", timeout, pc->uri, NULL};
	pc->c = PQconnectdbParams(keys, vals, 1);
	pc->setup_done = 0;
	if (pc->c == NULL) {
		snprintf(err, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	if (PQstatus(pc->c) != CONNECTION_OK) {
		char msg[400];
		one_line(msg, sizeof msg, PQerrorMessage(pc->c));
		int rc = DUROX_EIO;
		if (strstr(msg, "password authentication failed") != NULL ||
		    strstr(msg, "no password supplied") != NULL || strstr(msg, "authentication failed") != NULL ||
		    strstr(msg, "no pg_hba.conf entry") != NULL || strstr(msg, "permission denied") != NULL)
			rc = DUROX_EDENIED;
		else if (strstr(msg, "does not exist") != NULL)
			rc = DUROX_ENOTFOUND;
		else if (strstr(msg, "timeout expired") != NULL)
			rc = DUROX_ETIMEOUT;
		snprintf(err, errlen, "cannot connect to PostgreSQL store %s: %s", pc->display, msg);
		PQfinish(pc->c);
		pc->c = NULL;
		return rc;
	}
	PQsetNoticeProcessor(pc->c, quiet_notices, NULL);
	if (pc->cancel != NULL)
		PQfreeCancel(pc->cancel);
	pc->cancel = PQgetCancel(pc->c);
	return DUROX_OK;
}

/* Session settings of a new connection, in one round trip: the runtime's schema first on the
 * search path, the timeouts, and read-only transactions for a read-only handle. */
static int conn_setup(pg_store *s, pg_conn *pc)
{
	char path[PG_NAME_MAX + 8], stmt[16], lock[16], idle[16];
	snprintf(path, sizeof path, "\"%s\"", s->schema);
	snprintf(stmt, sizeof stmt, "%d", s->statement_timeout_ms);
	snprintf(lock, sizeof lock, "%d", s->lock_timeout_ms);
	snprintf(idle, sizeof idle, "%d", IDLE_IN_TXN_TIMEOUT_MS);
	const char *vals[] = {path, stmt, lock, idle, s->readonly || pc == s->reader ? "on" : "off", s->schema};
	PGresult *r =
	        PQexecParams(pc->c,
	                     "SELECT set_config('search_path',$1,false), set_config('statement_timeout',$2,false),"
	                     " set_config('lock_timeout',$3,false),"
	                     " set_config('idle_in_transaction_session_timeout',$4,false),"
	                     " set_config('default_transaction_read_only',$5,false),"
	                     " current_setting('plan_cache_mode'),"
	                     " (SELECT oid::text FROM pg_database WHERE datname = current_database()),"
	                     " (SELECT oid::text FROM pg_namespace WHERE nspname = $6)",
	                     6, NULL, vals, NULL, NULL, 0);
	int ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	int rc = ok ? DUROX_OK : result_fail(s, pc, r, "setting up the session");
	if (ok) {
		pc->plan_fixed = strcmp(PQgetvalue(r, 0, 5), "auto") != 0;
		pc->generic = 0;
	}
	if (ok && pc == &s->primary) {
		const char *db = PQgetvalue(r, 0, 6), *ns = PQgetisnull(r, 0, 7) ? "" : PQgetvalue(r, 0, 7);
		if (s->db_oid[0] == '\0') {
			snprintf(s->db_oid, sizeof s->db_oid, "%s", db);
			snprintf(s->schema_oid, sizeof s->schema_oid, "%s", ns);
		} else if (strcmp(s->db_oid, db) != 0 || (s->schema_oid[0] && strcmp(s->schema_oid, ns) != 0)) {
			ok = 0;
			s->gone = 1;
			s->last_rc = DUROX_EGONE;
			rc = store_fail(&s->base, DUROX_EGONE, "store %s was %s while it was open; open it again",
			                s->display,
			                strcmp(s->db_oid, db) != 0 ? "replaced by another database"
			                : ns[0]                    ? "replaced by another schema"
			                                           : "dropped (its schema is gone)");
		}
	}
	PQclear(r);
	pc->setup_done = ok;
	return rc;
}

/* The handle's store was dropped or replaced (s->gone): every call says so. */
static int gone_fail(pg_store *s)
{
	s->last_rc = DUROX_EGONE;
	return store_fail(&s->base, DUROX_EGONE, "store %s was dropped or replaced while it was open; open it again",
	                  s->display);
}

/* Makes sure pc is connected and set up; reconnects a dropped connection (its prepared
 * statements are gone with it). */
static int conn_ensure(pg_store *s, pg_conn *pc)
{
	if (s->gone)
		return gone_fail(s);
	if (!conn_bad(pc) && pc->setup_done)
		return DUROX_OK;
	if (conn_bad(pc)) {
		if (s->in_txn)
			return store_fail(&s->base, DUROX_EIO,
			                  "the connection to the PostgreSQL server was lost inside a transaction");
		cache_clear(pc);
		if (pc->c != NULL) {
			PQreset(pc->c);
		} else {
			char err[400];
			int rc = conn_open(s, pc, err, sizeof err);
			if (rc == DUROX_ENOTFOUND && s->db_oid[0] && strstr(err, "database \"") != NULL) {
				s->gone = 1;
				s->last_rc = DUROX_EGONE;
				return store_fail(
				        &s->base, DUROX_EGONE,
				        "store %s was dropped while it was open (its database is gone); open it again",
				        s->display);
			}
			if (rc != DUROX_OK)
				return store_fail(&s->base, rc, "%s", err);
		}
		if (conn_bad(pc)) {
			char msg[400];
			one_line(msg, sizeof msg, PQerrorMessage(pc->c));
			if (s->db_oid[0] && strstr(msg, "database \"") != NULL &&
			    strstr(msg, "does not exist") != NULL) {
				s->gone = 1;
				s->last_rc = DUROX_EGONE;
				return store_fail(
				        &s->base, DUROX_EGONE,
				        "store %s was dropped while it was open (its database is gone); open it again",
				        s->display);
			}
			s->last_rc = DUROX_EIO;
			return store_fail(&s->base, DUROX_EIO, "cannot reconnect to PostgreSQL store %s: %s",
			                  pc->display, msg);
		}
		s->reconnects++;
	}
	return conn_setup(s, pc);
}

/* The prepared statement for sql on pc (prepared on a miss); NULL on failure. */
static pg_stmt *stmt_get(pg_store *s, pg_conn *pc, const char *sql, const char *what, int *rc)
{
	pg_stmt *victim = &pc->cache[0];
	for (int i = 0; i < PG_CACHE_SIZE; i++) {
		pg_stmt *c = &pc->cache[i];
		if (c->sql != NULL && strcmp(c->sql, sql) == 0) {
			c->used = ++pc->clock;
			return c;
		}
		if (c->sql == NULL || (victim->sql != NULL && c->used < victim->used))
			victim = c;
	}
	if (victim->sql != NULL) {
		char dealloc[40];
		snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", victim->name);
		PQclear(PQexec(pc->c, dealloc));
		free(victim->sql);
		victim->sql = NULL;
	}
	char *copy = strdup(sql);
	if (copy == NULL) {
		*rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(victim->name, sizeof victim->name, "dx%u", ++pc->next_id);
	PGresult *r = PQprepare(pc->c, victim->name, sql, 0, NULL);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
		*rc = result_fail(s, pc, r, what);
		PQclear(r);
		free(copy);
		return NULL;
	}
	PQclear(r);
	victim->sql = copy;
	victim->used = ++pc->clock;
	return victim;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void account(pg_store *s, int write, int64_t t0)
{
	double ms = (double)(mono_ns() - t0) / 1e6;
	if (write) {
		s->writes++;
		s->write_ms += ms;
		if (ms > s->max_write_ms)
			s->max_write_ms = ms;
	} else {
		s->reads++;
		s->read_ms += ms;
		if (ms > s->max_read_ms)
			s->max_read_ms = ms;
	}
}

static pg_conn *conn_for(pg_store *s, int flags)
{
	if (s->reader != NULL && !s->in_txn && !(flags & (PQ_WRITE | PQ_PRIMARY)))
		return s->reader;
	return &s->primary;
}

/* Whether sql is prepared on pc (in its statement cache). */
static int stmt_cached(const pg_conn *pc, const char *sql)
{
	for (int i = 0; i < PG_CACHE_SIZE; i++)
		if (pc->cache[i].sql != NULL && strcmp(pc->cache[i].sql, sql) == 0)
			return 1;
	return 0;
}

/* Puts pc's plan_cache_mode where a statement of these flags wants it (PQ_GENERIC): one SET
 * when it changes, outside transactions, unless the session's mode was chosen by the server's
 * configuration or the URI. */
static int plan_mode(pg_store *s, pg_conn *pc, int flags)
{
	int want = (flags & PQ_GENERIC) != 0;
	if (pc->plan_fixed || s->in_txn || want == pc->generic)
		return DUROX_OK;
	PGresult *r = PQexec(pc->c, want ? "SET plan_cache_mode = force_generic_plan" : "SET plan_cache_mode = auto");
	int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
	int rc = ok ? DUROX_OK : result_fail(s, pc, r, "choosing how statements are planned");
	PQclear(r);
	if (ok)
		pc->generic = want;
	return rc;
}

/* A statement sent after the deferred ones, in the same pipeline (pq_flush_with). */
struct pq_final {
	int flags;
	const char *sql;
	const pqp *p;
	pq_row_cb cb;
	void *ud;
	uint64_t *affected;
	const char *what;
};
static int pq_flush_with(pg_store *s, const struct pq_final *fin);

int pq_query(pg_store *s, int flags, const char *sql, const pqp *p, pq_row_cb cb, void *ud, uint64_t *affected,
             const char *what)
{
	if (affected != NULL)
		*affected = 0;
	if (p != NULL && p->oom)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	pg_conn *pc = conn_for(s, flags);
	if (flags & PQ_WRITE)
		pq_cache_clear(s);
	if (s->npipe > 0 && pc == &s->primary) {
		/* deferred writes of this transaction are waiting: a statement already prepared goes
		 * in the same pipeline, so the writes and it cost one round trip together (a bulk job
		 * checks each target right after queueing the previous one's writes) */
		if (s->in_txn && !conn_bad(pc) && stmt_cached(pc, sql)) {
			struct pq_final fin = {flags, sql, p, cb, ud, affected, what};
			return pq_flush_with(s, &fin);
		}
		int frc = pq_flush(s);
		if (frc != DUROX_OK)
			return frc;
	}
	for (int attempt = 0;; attempt++) {
		int rc = conn_ensure(s, pc);
		if (rc != DUROX_OK)
			return rc;
		if ((rc = plan_mode(s, pc, flags)) != DUROX_OK) {
			if (attempt == 0 && conn_bad(pc) && !s->in_txn)
				continue;
			return rc;
		}
		int64_t t0 = mono_ns();
		pg_stmt *st = stmt_get(s, pc, sql, what, &rc);
		if (st == NULL) {
			if (attempt == 0 && conn_bad(pc) && !s->in_txn)
				continue;
			return rc;
		}
		if (!PQsendQueryPrepared(pc->c, st->name, p != NULL ? p->n : 0, p != NULL ? p->v : NULL, NULL, NULL,
		                         0)) {
			rc = result_fail(s, pc, NULL, what);
			if (attempt == 0 && conn_bad(pc) && !s->in_txn)
				continue;
			return rc;
		}
		PQsetSingleRowMode(pc->c);
		int delivered = 0, stop = 0;
		rc = DUROX_OK;
		PGresult *res;
		while ((res = PQgetResult(pc->c)) != NULL) {
			switch (PQresultStatus(res)) {
			case PGRES_SINGLE_TUPLE:
				if (!stop && cb != NULL) {
					delivered = 1;
					int x = cb(ud, res);
					if (x != 0) {
						stop = 1;
						if (x < 0)
							rc = x;
					}
				}
				break;
			case PGRES_TUPLES_OK: break;
			case PGRES_COMMAND_OK:
				if (affected != NULL)
					*affected = (uint64_t)strtoull(PQcmdTuples(res), NULL, 10);
				break;
			default:
				if (rc == DUROX_OK)
					rc = result_fail(s, pc, res, what);
				stop = 1;
			}
			PQclear(res);
		}
		account(s, flags & PQ_WRITE, t0);
		if (rc == DUROX_OK && conn_bad(pc))
			rc = result_fail(s, pc, NULL, what);
		if (rc != DUROX_OK && attempt == 0 && !delivered && conn_bad(pc) && !s->in_txn)
			continue; /* dropped before anything was delivered: reconnect and retry once */
		return rc;
	}
}

struct one_int_ud {
	int64_t *out;
	int *isnull;
};

static int one_int_cb(void *ud, const PGresult *r)
{
	struct one_int_ud *o = ud;
	if (!pq_isnull(r, 0)) {
		*o->out = pq_int(r, 0);
		if (o->isnull)
			*o->isnull = 0;
	}
	return 1;
}

int pq_one_int(pg_store *s, int flags, const char *sql, const pqp *p, int64_t *out, int *isnull, const char *what)
{
	*out = 0;
	if (isnull)
		*isnull = 1;
	struct one_int_ud o = {out, isnull};
	return pq_query(s, flags, sql, p, one_int_cb, &o, NULL, what);
}

int pq_exec_simple(pg_store *s, const char *sql, const char *what)
{
	pg_conn *pc = &s->primary;
	pq_cache_clear(s);
	if (s->npipe > 0) {
		int frc = pq_flush(s);
		if (frc != DUROX_OK)
			return frc;
	}
	int rc = conn_ensure(s, pc);
	if (rc != DUROX_OK)
		return rc;
	int64_t t0 = mono_ns();
	PGresult *r = PQexec(pc->c, sql);
	ExecStatusType x = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (x != PGRES_COMMAND_OK && conn_bad(pc) && !s->in_txn && strcmp(sql, "BEGIN") == 0) {
		/* the connection dropped while idle: nothing was begun, so reconnect and begin once more
		 * (a reconnect also finds a store dropped or replaced meanwhile) */
		PQclear(r);
		if ((rc = conn_ensure(s, pc)) != DUROX_OK)
			return rc;
		r = PQexec(pc->c, sql);
		x = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	}
	rc = x == PGRES_COMMAND_OK || x == PGRES_TUPLES_OK ? DUROX_OK : result_fail(s, pc, r, what);
	PQclear(r);
	account(s, 1, t0);
	return rc;
}

void pq_cache_clear(pg_store *s)
{
	for (size_t k = 0; k < s->qc_n; k++)
		free(s->qc_items[k]);
	free(s->qc_items);
	free(s->qc_id);
	s->qc_items = NULL;
	s->qc_id = NULL;
	s->qc_n = 0;
}

int pq_defer(pg_store *s, const char *sql, const pqp *p, const char *what, const char *check)
{
	if (!s->in_txn)
		return pq_query(s, PQ_WRITE, sql, p, NULL, NULL, NULL, what);
	if (p != NULL && p->oom)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	pq_cache_clear(s);
	pg_conn *pc = &s->primary;
	if (conn_bad(pc))
		return result_fail(s, pc, NULL, what);
	int rc = DUROX_OK;
	/* a statement not prepared yet is prepared outside the pipeline */
	if (!stmt_cached(pc, sql) && s->npipe > 0 && (rc = pq_flush(s)) != DUROX_OK)
		return rc;
	pg_stmt *st = stmt_get(s, pc, sql, what, &rc);
	if (st == NULL)
		return rc;
	if (PQpipelineStatus(pc->c) == PQ_PIPELINE_OFF && !PQenterPipelineMode(pc->c))
		return result_fail(s, pc, NULL, what);
	if (!PQsendQueryPrepared(pc->c, st->name, p != NULL ? p->n : 0, p != NULL ? p->v : NULL, NULL, NULL, 0)) {
		rc = result_fail(s, pc, NULL, what);
		pq_flush(s);
		return rc;
	}
	struct pq_pending *e = &s->pipe[s->npipe++];
	snprintf(e->what, sizeof e->what, "%s", what);
	snprintf(e->check, sizeof e->check, "%s", check != NULL ? check : "");
	s->writes++;
	if (s->npipe == (int)(sizeof s->pipe / sizeof s->pipe[0]))
		return pq_flush(s);
	return DUROX_OK;
}

int pq_flush(pg_store *s) { return s->npipe == 0 ? DUROX_OK : pq_flush_with(s, NULL); }

/* The results of fin (when not NULL), the statement sent last in the pipeline: as pq_query
 * reads them (single-row mode, cb per row, the affected count). A deferred write that failed
 * aborted it: rc is that failure. */
static int final_results(pg_store *s, pg_conn *pc, const struct pq_final *fin, int rc)
{
	PQsetSingleRowMode(pc->c);
	int stop = 0;
	PGresult *res;
	while ((res = PQgetResult(pc->c)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			if (rc == DUROX_OK && !stop && fin->cb != NULL) {
				int x = fin->cb(fin->ud, res);
				if (x != 0) {
					stop = 1;
					if (x < 0)
						rc = x;
				}
			}
			break;
		case PGRES_TUPLES_OK: break;
		case PGRES_COMMAND_OK:
			if (fin->affected != NULL)
				*fin->affected = (uint64_t)strtoull(PQcmdTuples(res), NULL, 10);
			break;
		case PGRES_PIPELINE_ABORTED:
			if (rc == DUROX_OK)
				rc = result_fail(s, pc, res, fin->what);
			break;
		default:
			if (rc == DUROX_OK)
				rc = result_fail(s, pc, res, fin->what);
			stop = 1;
		}
		PQclear(res);
	}
	return rc;
}

static int pq_flush_with(pg_store *s, const struct pq_final *fin)
{
	pg_conn *pc = &s->primary;
	int64_t t0 = mono_ns();
	int rc = DUROX_OK;
	if (fin != NULL) {
		pg_stmt *st = stmt_get(s, pc, fin->sql, fin->what, &rc); /* cached: no round trip */
		if (st == NULL || !PQsendQueryPrepared(pc->c, st->name, fin->p != NULL ? fin->p->n : 0,
		                                       fin->p != NULL ? fin->p->v : NULL, NULL, NULL, 0)) {
			if (st != NULL)
				rc = result_fail(s, pc, NULL, fin->what);
			int frc = pq_flush_with(s, NULL);
			return rc != DUROX_OK ? rc : frc;
		}
	}
	if (conn_bad(pc) || !PQpipelineSync(pc->c)) {
		rc = result_fail(s, pc, NULL, s->pipe[0].what);
	} else {
		for (int k = 0; k < s->npipe; k++) {
			PGresult *res;
			/* (libpq may carry single-row mode over from the statement before: rows then come
			 * one per result) */
			while ((res = PQgetResult(pc->c)) != NULL) {
				ExecStatusType x = PQresultStatus(res);
				if (rc == DUROX_OK && x == PGRES_COMMAND_OK && s->pipe[k].check[0] != '\0' &&
				    strcmp(PQcmdTuples(res), "1") != 0)
					rc = store_fail(&s->base, DUROX_ECORRUPT, "%s", s->pipe[k].check);
				else if (rc == DUROX_OK && x != PGRES_COMMAND_OK && x != PGRES_TUPLES_OK &&
				         x != PGRES_SINGLE_TUPLE && x != PGRES_PIPELINE_ABORTED)
					rc = result_fail(s, pc, res, s->pipe[k].what);
				PQclear(res);
			}
		}
		if (fin != NULL)
			rc = final_results(s, pc, fin, rc);
		/* the sync's own result */
		PGresult *res;
		while ((res = PQgetResult(pc->c)) != NULL) {
			ExecStatusType x = PQresultStatus(res);
			PQclear(res);
			if (x == PGRES_PIPELINE_SYNC)
				break;
		}
		if (!PQexitPipelineMode(pc->c) && rc == DUROX_OK)
			rc = result_fail(s, pc, NULL, s->pipe[0].what);
	}
	s->npipe = 0;
	if (fin != NULL) {
		account(s, fin->flags & PQ_WRITE, t0);
		if (rc == DUROX_OK && conn_bad(pc))
			rc = result_fail(s, pc, NULL, fin->what);
		return rc;
	}
	double ms = (double)(mono_ns() - t0) / 1e6;
	s->write_ms += ms;
	if (ms > s->max_write_ms)
		s->max_write_ms = ms;
	return rc;
}

char *pq_ours(pg_store *s, const char *tmpl)
{
	buf b;
	buf_init(&b);
	for (const char *p = tmpl; *p != '\0'; p++) {
		if (p[0] == '@' && (p[1] == 'S' || p[1] == 'R') && p[2] == '.') {
			buf_addf(&b, "\"%s\".", p[1] == 'S' ? s->state_schema : s->schema);
			p += 2;
		} else {
			buf_addc(&b, *p);
		}
	}
	if (buf_oom(&b)) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* ---- the schema ---------------------------------------------------------------------- */

struct cols_ud {
	hmap *m;
	int oom;
};

static int cols_cb(void *ud, const PGresult *r)
{
	struct cols_ud *c = ud;
	const char *t = pq_text(r, 0), *col = pq_text(r, 1);
	if (t == NULL)
		return 0;
	char key[256];
	int n = snprintf(key, sizeof key, "%s.%s", t, col != NULL ? col : "");
	int created;
	if (n > 0 && (size_t)n < sizeof key && hmap_put(c->m, key, (size_t)n, &created) == NULL)
		c->oom = 1;
	return 0;
}

static int has(const hmap *m, const char *table, const char *col)
{
	char key[256];
	int n = snprintf(key, sizeof key, "%s.%s", table, col != NULL ? col : "");
	return n > 0 && hmap_get(m, key, (size_t)n) != NULL;
}

struct ver_ud {
	char *out;
	size_t cap;
};

static int ver_cb(void *ud, const PGresult *r)
{
	struct ver_ud *v = ud;
	const char *t = pq_text(r, 0);
	if (t != NULL)
		snprintf(v->out, v->cap, "%s", t);
	return 1;
}

static int detect_schema(pg_store *s)
{
	pqp p;
	pqp_init(&p);
	pqp_text(&p, s->schema);
	int64_t found = 0;
	char db[128];
	snprintf(db, sizeof db, "%s", PQdb(s->primary.c) ? PQdb(s->primary.c) : "?");
	int rc = pq_one_int(s, PQ_PRIMARY, "SELECT count(*) FROM pg_namespace WHERE nspname=$1", &p, &found, NULL,
	                    "reading the schema");
	if (rc == DUROX_OK && found == 0)
		rc = store_fail(&s->base, DUROX_ENOTFOUND,
		                "schema '%s' does not exist in database '%s' (check schema= in the store URL)",
		                s->schema, db);
	hmap cols;
	hmap_init(&cols);
	struct cols_ud cu = {&cols, 0};
	/* tables with their columns, and (as "<name>.") functions and their signatures */
	if (rc == DUROX_OK)
		rc = pq_query(
		        s, PQ_PRIMARY,
		        "SELECT c.relname::text, a.attname::text FROM pg_class c JOIN pg_namespace n ON "
		        "n.oid=c.relnamespace"
		        " JOIN pg_attribute a ON a.attrelid=c.oid AND a.attnum>0 AND NOT a.attisdropped"
		        " WHERE n.nspname=$1 AND c.relkind IN ('r','p','v','m','f')"
		        " UNION ALL SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', NULL"
		        " FROM pg_proc p JOIN pg_namespace n ON n.oid=p.pronamespace WHERE n.nspname=$1",
		        &p, cols_cb, &cu, NULL, "reading the schema");
	if (rc == DUROX_OK && cu.oom)
		rc = store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	static const char *const required[][2] = {
	        {"instances", "instance_id"},
	        {"instances", "orchestration_name"},
	        {"instances", "current_execution_id"},
	        {"instances", "created_at"},
	        {"executions", "execution_id"},
	        {"executions", "status"},
	        {"executions", "output"},
	        {"history", "event_data"},
	        {"history", "event_type"},
	        {"orchestrator_queue", "work_item"},
	        {"worker_queue", "work_item"},
	};
	for (size_t i = 0; rc == DUROX_OK && i < sizeof required / sizeof required[0]; i++) {
		if (!has(&cols, required[i][0], required[i][1])) {
			int table = 0;
			/* is it the table or only the column that is missing? */
			static const char *const probe_cols[] = {"instance_id", "execution_id", "work_item", "id"};
			for (size_t k = 0; k < 4; k++)
				table |= has(&cols, required[i][0], probe_cols[k]);
			if (!table)
				rc = store_fail(
				        &s->base, DUROX_EUNSUPPORTED,
				        "schema '%s' of database '%s' is not a Duroxide store (it has no table '%s')",
				        s->schema, db, required[i][0]);
			else
				rc = store_fail(&s->base, DUROX_EUNSUPPORTED,
				                "schema '%s' of database '%s' is not a Duroxide store (table '%s' has "
				                "no column "
				                "'%s')",
				                s->schema, db, required[i][0], required[i][1]);
		}
	}
	durox_store_info *in = &s->base.info;
	if (rc == DUROX_OK) {
		in->has_custom_status = has(&cols, "instances", "custom_status");
		in->has_parent_instance = has(&cols, "instances", "parent_instance_id");
		in->has_kv = has(&cols, "kv_store", "key");
		in->has_sessions = has(&cols, "sessions", "session_id");
		in->has_attempt_count = has(&cols, "orchestrator_queue", "attempt_count");
		in->has_worker_identity = has(&cols, "worker_queue", "activity_id");
		s->has_kv_delta = has(&cols, "kv_delta", "key");
		s->has_enqueue =
		        has(&cols,
		            "enqueue_orchestrator_work(p_instance_id text, p_work_item text, p_visible_at "
		            "timestamp with time zone, p_orchestration_name text, p_orchestration_version text, "
		            "p_execution_id bigint)",
		            NULL);
		s->has_delete = has(&cols, "delete_instances_atomic(p_instance_ids text[], p_force boolean)", NULL);
		s->has_prune =
		        has(&cols,
		            "prune_executions(p_instance_id text, p_keep_last integer, p_completed_before_ms bigint)",
		            NULL);
	}
	if (rc == DUROX_OK) {
		int64_t c = 0;
		rc = pq_one_int(s, PQ_PRIMARY,
		                "SELECT count(*) FROM pg_database WHERE datname = current_database() AND datcollate IN"
		                " ('C','POSIX')",
		                NULL, &c, NULL, "reading the database's collation");
		s->byte_order = c > 0;
	}
	int has_migrations = rc == DUROX_OK && has(&cols, "_duroxide_migrations", "version");
	hmap_free(&cols);
	char version[32] = "none";
	if (rc == DUROX_OK && has_migrations) {
		struct ver_ud vu = {version, sizeof version};
		rc = pq_query(s, PQ_PRIMARY, "SELECT max(version)::text FROM _duroxide_migrations", NULL, ver_cb, &vu,
		              NULL, "reading the migrations table");
	}
	pqp_free(&p);
	if (rc != DUROX_OK)
		return rc;
	if ((s->schema_version = strdup(version)) == NULL)
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	in->schema_version = s->schema_version;
	return DUROX_OK;
}

/* ---- open/close ------------------------------------------------------------------------ */

static void pg_close(store *base)
{
	pg_store *s = (pg_store *)base;
	if (s == NULL)
		return;
	pg_metrics_free(s);
	pgi_free(s->ix);
	pq_cache_clear(s);
	conn_close(&s->primary);
	if (s->reader != NULL) {
		conn_close(s->reader);
		free(s->reader);
	}
	free(s->display);
	free(s->schema_version);
	free(s->identity);
	free(s->state_buf);
	free(s);
}

/* PQcancel sends the server a cancel request for what runs on the connection; it is safe in
 * a signal handler with a local error buffer. */
static void pg_interrupt(store *base)
{
	pg_store *s = (pg_store *)base;
	char err[256];
	PGcancel *c = s->primary.cancel;
	if (c != NULL)
		PQcancel(c, err, sizeof err);
	if (s->reader != NULL && (c = s->reader->cancel) != NULL)
		PQcancel(c, err, sizeof err);
}

static const store_vtable pg_vtable = {
        pg_close,      pg_list,    pg_count,           pg_summaries_by_id,
        pg_executions, pg_history, pg_instance_exists, pg_latest_execution,
        pg_interrupt,
};

static int identity_row(void *ud, const PGresult *r)
{
	pg_store *s = ud;
	const char *sys = pq_text(r, 0), *db = pq_text(r, 1);
	size_t n = strlen(sys ? sys : "") + strlen(db ? db : "") + strlen(s->schema) + 3;
	if ((s->identity = malloc(n)) == NULL)
		return DUROX_ENOMEM;
	snprintf(s->identity, n, "%s/%s/%s", sys ? sys : "", db ? db : "", s->schema);
	return 1;
}

/* store.identity, which binds cursors to this store: the cluster's system identifier, the
 * database and the runtime's schema (the same on a standby of the primary). */
static int read_identity(pg_store *s)
{
	int rc = pq_query(s, PQ_PRIMARY,
	                  "SELECT (SELECT system_identifier::text FROM pg_control_system()), current_database()", NULL,
	                  identity_row, s, NULL, "reading the store's identity");
	if (rc == DUROX_ENOMEM || (rc == DUROX_OK && s->identity == NULL))
		return store_fail(&s->base, DUROX_ENOMEM, "out of memory");
	s->base.identity = s->identity;
	return rc;
}

/* Fails an open: message into err, the store freed. */
static int open_fail(pg_store *s, int rc, char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	pg_close(&s->base);
	return rc;
}

int store_postgres_open(const char *location, const durox_open_options *opts, store **out, char *err, size_t errlen)
{
	*out = NULL;
	pg_url u;
	int rc = parse_url(location, &u, err, errlen);
	if (rc != DUROX_OK)
		return rc;
	pg_store *s = calloc(1, sizeof *s);
	if (s == NULL) {
		free(u.uri);
		snprintf(err, errlen, "out of memory");
		return DUROX_ENOMEM;
	}
	s->primary.uri = u.uri;
	s->base.vt = &pg_vtable;
	s->base.mvt = &pg_metrics_vtable;
	s->base.ops = &pg_ops_vtable;
	s->base.audit = &pg_audit_vtable;
	s->base.fvt = &pg_feed_vtable;
	s->base.svt = &pg_state_vtable;
	s->base.info.provider = "postgres";
	s->readonly = opts != NULL && opts->readonly;
	s->base.info.readonly = s->readonly;
	snprintf(s->schema, sizeof s->schema, "%s", u.schema);
	snprintf(s->state_schema, sizeof s->state_schema, "%s", u.state_schema);
	s->statement_timeout_ms = u.statement_timeout_ms > 0                       ? u.statement_timeout_ms
	                          : opts != NULL && opts->statement_timeout_ms > 0 ? opts->statement_timeout_ms
	                                                                           : DEFAULT_STATEMENT_TIMEOUT_MS;
	/* "how long to wait for a locked store" is PostgreSQL's lock_timeout */
	s->lock_timeout_ms =
	        opts != NULL && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : DEFAULT_LOCK_TIMEOUT_MS;
	int ct_ms = opts != NULL && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
	                                                         : DEFAULT_CONNECT_TIMEOUT_S * 1000;
	s->connect_timeout_s = (ct_ms + 999) / 1000;
	if (s->connect_timeout_s < 2)
		s->connect_timeout_s = 2;
	s->display = store_mask_url(location);
	s->primary.display = store_mask_url(location);
	if (s->display == NULL || s->primary.display == NULL)
		return open_fail(s, DUROX_ENOMEM, err, errlen, "out of memory");
	s->base.info.location = s->display;
	char msg[512];
	if ((rc = conn_open(s, &s->primary, msg, sizeof msg)) != DUROX_OK)
		return open_fail(s, rc, err, errlen, msg);
	if ((rc = conn_setup(s, &s->primary)) != DUROX_OK || (rc = detect_schema(s)) != DUROX_OK)
		return open_fail(s, rc, err, errlen, s->base.err);
	if (opts != NULL && opts->read_url != NULL && opts->read_url[0] != '\0') {
		pg_url ru;
		if (strncmp(opts->read_url, "postgres://", 11) != 0 &&
		    strncmp(opts->read_url, "postgresql://", 13) != 0)
			return open_fail(s, DUROX_EINVALID, err, errlen,
			                 "read_url must be a postgres:// or postgresql:// URL (a standby of the "
			                 "store's server)");
		if ((rc = parse_url(opts->read_url, &ru, msg, sizeof msg)) != DUROX_OK)
			return open_fail(s, rc, err, errlen, msg);
		if (strcmp(ru.schema, "public") != 0 && strcmp(ru.schema, s->schema) != 0) {
			free(ru.uri);
			return open_fail(
			        s, DUROX_EINVALID, err, errlen,
			        "read_url names another schema than the store URL (a standby holds the same schema)");
		}
		if ((s->reader = calloc(1, sizeof *s->reader)) == NULL) {
			free(ru.uri);
			return open_fail(s, DUROX_ENOMEM, err, errlen, "out of memory");
		}
		s->reader->uri = ru.uri;
		if ((s->reader->display = store_mask_url(opts->read_url)) == NULL)
			return open_fail(s, DUROX_ENOMEM, err, errlen, "out of memory");
		if ((rc = conn_open(s, s->reader, msg, sizeof msg)) != DUROX_OK)
			return open_fail(s, rc, err, errlen, msg);
		if ((rc = conn_setup(s, s->reader)) != DUROX_OK)
			return open_fail(s, rc, err, errlen, s->base.err);
	}
	if ((rc = read_identity(s)) != DUROX_OK)
		return open_fail(s, rc, err, errlen, s->base.err);
	int mode = opts != NULL ? opts->index : DUROX_INDEX_AUTO;
	if (mode != DUROX_INDEX_AUTO && mode != DUROX_INDEX_OFF)
		return open_fail(s, DUROX_EINVALID, err, errlen, "unknown index mode");
	if (opts != NULL && opts->index_path != NULL && mode != DUROX_INDEX_OFF)
		return open_fail(s, DUROX_EINVALID, err, errlen,
		                 "index = PATH is for SQLite stores: on PostgreSQL the visibility index is a table of"
		                 " the state schema (state_schema= in the URL)");
	if ((s->ix = pgi_new(s, mode)) == NULL)
		return open_fail(s, DUROX_ENOMEM, err, errlen, "out of memory");
	s->base.ivt = &pg_index_vtable;
	s->base.err[0] = '\0';
	*out = &s->base;
	return DUROX_OK;
}
