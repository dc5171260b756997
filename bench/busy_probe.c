/*
 * busy_probe.c - a writer that commits the way Duroxide 0.1.29's SQLite provider acks a turn,
 * and counts how often SQLite refuses it: the mechanism behind "database is locked" failures.
 *
 *   busy_probe DB SECONDS [LABEL [GAP_US]]
 *
 * Each transaction is DEFERRED (BEGIN), reads first (a lock check, as the runtime's ack reads
 * instance_locks), then writes (an INSERT into a table of the probe's own, durox_probe_log,
 * created in DB on start), then commits, then sleeps GAP_US microseconds (default 0). The connection has no busy
 * timeout: the runtime's ack upgrades a read transaction to a write one, and SQLite never waits in that upgrade, so a
 * refusal there is immediate whatever the timeout; with no timeout at all every refusal anywhere
 * is counted. It prints one JSON line: transactions committed, SQLITE_BUSY by step (begin/read,
 * write = the upgrade, commit), other errors. Used by bench/reads_mechanism.sh; needs only
 * libsqlite3. Run it on a copy of a store, never on a store a
 * runtime works on (it adds its own table).
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs one statement to completion; returns its final result code. */
static int step_sql(sqlite3_stmt *st)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	int r = sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : (r != SQLITE_OK ? r : rc);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: busy_probe DB SECONDS [LABEL [GAP_US]]\n");
		return 2;
	}
	double seconds = atof(argv[2]);
	const char *label = argc > 3 ? argv[3] : "";
	long gap_us = argc > 4 ? atol(argv[4]) : 0;
	struct timespec gap = {gap_us / 1000000, (gap_us % 1000000) * 1000};
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "busy_probe: cannot open %s: %s\n", argv[1], db ? sqlite3_errmsg(db) : "?");
		sqlite3_close(db);
		return 1;
	}
	sqlite3_extended_result_codes(db, 1);
	/* created with a generous timeout: only the measured loop runs without one */
	sqlite3_busy_timeout(db, 10000);
	char *msg = NULL;
	if (sqlite3_exec(db,
	                 "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS durox_probe_log"
	                 " (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, label TEXT)",
	                 NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "busy_probe: setup failed: %s\n", msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(db);
		return 1;
	}
	sqlite3_busy_timeout(db, 0);
	sqlite3_stmt *begin = NULL, *rd = NULL, *wr = NULL, *commit = NULL, *rollback = NULL;
	if (sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM instance_locks WHERE instance_id = 'probe'", -1, &rd, NULL) !=
	            SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO durox_probe_log (at, label) VALUES (?1, ?2)", -1, &wr, NULL) !=
	            SQLITE_OK ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "ROLLBACK", -1, &rollback, NULL) != SQLITE_OK) {
		fprintf(stderr, "busy_probe: %s\n", sqlite3_errmsg(db));
		sqlite3_close(db);
		return 1;
	}
	unsigned long txns = 0, busy_read = 0, busy_write = 0, busy_commit = 0, other = 0;
	char first_other[200] = "";
	double end = mono() + seconds;
	while (mono() < end) {
		int rc = step_sql(begin);
		if (rc == SQLITE_OK)
			rc = step_sql(rd);
		if ((rc & 0xFF) == SQLITE_BUSY) {
			busy_read++;
			goto undo;
		}
		if (rc != SQLITE_OK)
			goto fail;
		sqlite3_bind_int64(wr, 1, (sqlite3_int64)(mono() * 1000));
		sqlite3_bind_text(wr, 2, label, -1, SQLITE_STATIC);
		rc = step_sql(wr);
		if ((rc & 0xFF) == SQLITE_BUSY) {
			busy_write++;
			goto undo;
		}
		if (rc != SQLITE_OK)
			goto fail;
		rc = step_sql(commit);
		if ((rc & 0xFF) == SQLITE_BUSY) {
			busy_commit++;
			goto undo;
		}
		if (rc != SQLITE_OK)
			goto fail;
		txns++;
		if (gap_us > 0)
			nanosleep(&gap, NULL);
		continue;
	fail:
		if (other++ == 0)
			snprintf(first_other, sizeof first_other, "%s", sqlite3_errmsg(db));
	undo:
		if (!sqlite3_get_autocommit(db))
			step_sql(rollback);
		if (gap_us > 0)
			nanosleep(&gap, NULL);
	}
	printf("{\"label\":\"%s\",\"seconds\":%.1f,\"txns\":%lu,\"busy\":%lu,\"busy_read\":%lu,\"busy_write\":%lu,"
	       "\"busy_commit\":%lu,\"other\":%lu,\"first_other\":\"%s\"}\n",
	       label, seconds, txns, busy_read + busy_write + busy_commit, busy_read, busy_write, busy_commit, other,
	       first_other);
	sqlite3_finalize(begin);
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	sqlite3_finalize(commit);
	sqlite3_finalize(rollback);
	sqlite3_close(db);
	return 0;
}
