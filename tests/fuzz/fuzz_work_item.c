/*
 * fuzz_work_item.c - libFuzzer target for the work-item encoder (src/engine/ops.c: the
 * StartOrchestration, ExternalRaised, QueueMessage and CancelInstance JSON that duroxlua
 * enqueues for the runtime). The input is up to four NUL-separated strings (instance id, name,
 * payload, version) after a selector byte. Strings that are not valid UTF-8 must be refused by
 * op_valid_utf8 (the writes check it before encoding) and are not encoded. For the others it
 * aborts when an invariant fails, judged by SQLite's own JSON functions, not by our util/json:
 * - the item is valid JSON (json_valid) with exactly one top-level key, the variant's name;
 * - every string field decodes (json_extract) to exactly the bytes given, and the fixed fields
 *   are what Duroxide's serde form has (version null or the string, parent fields null,
 *   execution_id 1);
 * - the text is serde's compact form: no whitespace outside strings, no raw control character
 *   inside them.
 * Seeds in corpus/work_item were taken from the work items and events of the real stores.
 */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ops_internal.h"
#include "util/buf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static sqlite3_stmt *valid, *extract, *keys;

static void die(const char *what, const char *item, const char *detail)
{
	fprintf(stderr, "fuzz_work_item: %s\nitem: %s\ndetail: %s\n", what, item, detail ? detail : "");
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT json_valid(?1)", -1, &valid, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT json_type(?1, ?2), json_extract(?1, ?2)", -1, &extract, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*), min(key) FROM json_each(?1)", -1, &keys, NULL) != SQLITE_OK) {
		fprintf(stderr, "fuzz_work_item: sqlite: %s\n", sqlite3_errmsg(db));
		abort();
	}
	return 0;
}

/* Checks that path in item holds the string s (or JSON null when s is NULL). */
static void expect_str(const char *item, const char *path, const char *s)
{
	sqlite3_reset(extract);
	sqlite3_bind_text(extract, 1, item, -1, SQLITE_STATIC);
	sqlite3_bind_text(extract, 2, path, -1, SQLITE_STATIC);
	if (sqlite3_step(extract) != SQLITE_ROW)
		die("json_extract failed", item, path);
	const char *type = (const char *)sqlite3_column_text(extract, 0);
	if (s == NULL) {
		if (type == NULL || strcmp(type, "null") != 0)
			die("field is not null", item, path);
		return;
	}
	if (type == NULL || strcmp(type, "text") != 0)
		die("field is not a string", item, path);
	const char *got = (const char *)sqlite3_column_text(extract, 1);
	int n = sqlite3_column_bytes(extract, 1);
	if (got == NULL || (size_t)n != strlen(s) || memcmp(got, s, (size_t)n) != 0)
		die("field does not decode to the bytes given", item, path);
}

static void expect_int(const char *item, const char *path, long long v)
{
	sqlite3_reset(extract);
	sqlite3_bind_text(extract, 1, item, -1, SQLITE_STATIC);
	sqlite3_bind_text(extract, 2, path, -1, SQLITE_STATIC);
	if (sqlite3_step(extract) != SQLITE_ROW)
		die("json_extract failed", item, path);
	const char *type = (const char *)sqlite3_column_text(extract, 0);
	if (type == NULL || strcmp(type, "integer") != 0 || sqlite3_column_int64(extract, 1) != v)
		die("field is not the expected integer", item, path);
}

/* Valid JSON, one top-level key (variant) whose value is an object, no insignificant space. */
static void expect_shape(const char *item, const char *variant)
{
	sqlite3_reset(valid);
	sqlite3_bind_text(valid, 1, item, -1, SQLITE_STATIC);
	if (sqlite3_step(valid) != SQLITE_ROW || sqlite3_column_int(valid, 0) != 1)
		die("not valid JSON", item, variant);
	sqlite3_reset(keys);
	sqlite3_bind_text(keys, 1, item, -1, SQLITE_STATIC);
	if (sqlite3_step(keys) != SQLITE_ROW || sqlite3_column_int(keys, 0) != 1 ||
	    sqlite3_column_text(keys, 1) == NULL || strcmp((const char *)sqlite3_column_text(keys, 1), variant) != 0)
		die("not a single-variant object", item, variant);
	int in_str = 0;
	for (const char *p = item; *p; p++) {
		if (in_str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				in_str = 0;
			else if ((unsigned char)*p < 0x20)
				die("raw control character in a string", item, variant);
		} else if (*p == '"') {
			in_str = 1;
		} else if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
			die("whitespace outside strings (not serde's compact form)", item, variant);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 16)
		return 0;
	int sel = data[0];
	/* up to 4 strings separated by NUL; missing ones are "" */
	char *copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	const char *f[4] = {"", "", "", ""};
	size_t nf = 0;
	const char *p = copy, *end = copy + size - 1;
	while (nf < 4 && p <= end) {
		f[nf++] = p;
		p += strlen(p) + 1;
	}
	for (size_t k = 0; k < 4; k++)
		if (!op_valid_utf8(f[k]))
			goto done; /* refused before encoding by every write */
	buf b;
	buf_init(&b);
	switch (sel % 4) {
	case 0: {
		const char *version = (sel & 4) ? f[3] : NULL;
		op_encode_start(&b, f[0], f[1], f[2], version);
		if (buf_oom(&b))
			break;
		expect_shape(b.data, "StartOrchestration");
		expect_str(b.data, "$.StartOrchestration.instance", f[0]);
		expect_str(b.data, "$.StartOrchestration.orchestration", f[1]);
		expect_str(b.data, "$.StartOrchestration.input", f[2]);
		expect_str(b.data, "$.StartOrchestration.version", version);
		expect_str(b.data, "$.StartOrchestration.parent_instance", NULL);
		expect_str(b.data, "$.StartOrchestration.parent_id", NULL);
		expect_int(b.data, "$.StartOrchestration.execution_id", 1);
		break;
	}
	case 1:
	case 2: {
		int queue = sel % 4 == 2;
		const char *variant = queue ? "QueueMessage" : "ExternalRaised";
		op_encode_event(&b, queue, f[0], f[1], f[2]);
		if (buf_oom(&b))
			break;
		expect_shape(b.data, variant);
		char path[64];
		snprintf(path, sizeof path, "$.%s.instance", variant);
		expect_str(b.data, path, f[0]);
		snprintf(path, sizeof path, "$.%s.name", variant);
		expect_str(b.data, path, f[1]);
		snprintf(path, sizeof path, "$.%s.data", variant);
		expect_str(b.data, path, f[2]);
		break;
	}
	default:
		op_encode_cancel(&b, f[0], f[1]);
		if (buf_oom(&b))
			break;
		expect_shape(b.data, "CancelInstance");
		expect_str(b.data, "$.CancelInstance.instance", f[0]);
		expect_str(b.data, "$.CancelInstance.reason", f[1]);
		break;
	}
	buf_free(&b);
done:
	free(copy);
	return 0;
}
