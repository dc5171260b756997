/*
 * audit.h - the provider contract for the audit log: our own append-only table of
 * hash-chained records (SQLite: durox_audit_log, sqlite_audit.c; PostgreSQL: a table in our
 * own schema). A provider that keeps one sets store.audit (provider.h); the engine
 * (src/engine/audit.c) computes the hashes and decides what is recorded, the provider only
 * stores and reads rows.
 *
 * create/head/append run inside a write transaction the engine holds (store/ops.h begin),
 * so the head read and the append see one snapshot and concurrent writers cannot fork the
 * chain. Row pointers handed to callbacks are valid only during the callback.
 */
#ifndef DUROX_STORE_AUDIT_H
#define DUROX_STORE_AUDIT_H

#include <stdint.h>

#include "store/provider.h"

/* One record as stored; every text may be NULL except roles, operation, decision, prev_hash
 * and hash. */
typedef struct store_audit_row {
	uint64_t seq;
	int64_t at_ms;
	const char *user_id, *roles, *source_ip, *context_reason;
	const char *operation, *target, *decision, *reason, *policy;
	const char *params, *result;
	const char *prev_hash, *hash;
} store_audit_row;

typedef int (*store_audit_cb)(void *ud, const store_audit_row *r);

typedef struct store_audit_query {
	int64_t since;         /* at_ms >= since; DUROX_NO_TIME: no bound */
	const char *user_id;   /* NULL: any */
	const char *operation; /* NULL: any */
	uint32_t limit;        /* 0: all */
	int newest_first;      /* order by seq descending (with limit: the newest) */
} store_audit_query;

typedef struct store_audit_vtable {
	/* Creates the table (and what keeps it append-only) if missing; inside a write transaction. */
	int (*create)(store *st);
	/* Whether the table exists. */
	int (*exists)(store *st, int *exists);
	/* The last record's seq (0 when none) and hash (hex, 65 bytes; "" when none); inside a
	 * write transaction. */
	int (*head)(store *st, uint64_t *seq, char hash[65]);
	/* Inserts r (r->seq must be head + 1); inside a write transaction. */
	int (*append)(store *st, const store_audit_row *r);
	/* Records matching q; for the whole chain in order: since NO_TIME, no user or operation,
	 * limit 0, newest_first 0. */
	int (*read)(store *st, const store_audit_query *q, store_audit_cb cb, void *ud);
} store_audit_vtable;

#endif
