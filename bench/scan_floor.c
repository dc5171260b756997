/*
 * scan_floor.c - the floors bench/index_bench.sh measures the visibility index against: one
 * full read of a table in rowid order, stepping every row and touching every column, with the
 * plain SQLite library (no duroxlua code).
 *
 *   scan_floor DB history      every history row, all six columns (one full read of history)
 *   scan_floor DB executions   every executions row, all columns (what an unindexed listing
 *                              of the store must read at least once per page)
 *
 * Prints {"table","rows","bytes","ms","cpu_ms"}: the median of 3 reads of the wall time and,
 * apart, of the CPU time (user + system of this process) of the read alone. The CPU of one
 * read, not of the whole process (which reads three times): what a build's CPU compares with.
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[2], "history") != 0 && strcmp(argv[2], "executions") != 0)) {
		fprintf(stderr, "usage: scan_floor DB history|executions\n");
		return 2;
	}
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "scan_floor: cannot open %s\n", argv[1]);
		sqlite3_close(db);
		return 1;
	}
	const char *sql =
	        strcmp(argv[2], "history") == 0
	                ? "SELECT instance_id, execution_id, event_id, event_type, event_data, created_at FROM history"
	                : "SELECT instance_id, execution_id, status, output, started_at, completed_at FROM executions";
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "scan_floor: %s\n", sqlite3_errmsg(db));
		sqlite3_close(db);
		return 1;
	}
	double times[3], cpu[3];
	long long rows = 0, bytes = 0;
	for (int k = 0; k < 3; k++) {
		rows = bytes = 0;
		double t0 = now_ms(), c0 = cpu_ms();
		while (sqlite3_step(st) == SQLITE_ROW) {
			rows++;
			for (int c = 0; c < 6; c++) {
				sqlite3_column_blob(st, c);
				bytes += sqlite3_column_bytes(st, c);
			}
		}
		times[k] = now_ms() - t0;
		cpu[k] = cpu_ms() - c0;
		sqlite3_reset(st);
	}
	qsort(times, 3, sizeof times[0], cmp);
	qsort(cpu, 3, sizeof cpu[0], cmp);
	printf("{\"table\":\"%s\",\"rows\":%lld,\"bytes\":%lld,\"ms\":%.1f,\"cpu_ms\":%.1f}\n", argv[2], rows, bytes,
	       times[1], cpu[1]);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}
