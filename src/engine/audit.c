/*
 * audit.c - the audit log: append-only, hash-chained records of every write attempt, bulk
 * job, denied read and policy load (decided in access.c and the operations), kept in our
 * own table through the provider's audit entries (store/audit.h) by writable handles and in
 * a JSON Lines file by read-only ones; durox_get_audit_log and durox_verify_audit_log.
 *
 * A record's hash is SHA-256 (HMAC-SHA256 with the handle's audit_key) over its canonical
 * JSON text, which includes the previous record's hash; a file line is that canonical text
 * with ,"hash":"<hex>" added before the closing brace, so file and table records verify
 * the same way. Relies on util/sha256 and util/json; used by access.c, ops.c and jobs.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/access.h"
#include "store/audit.h"
#include "store/ops.h"
#include "util/json.h"
#include "util/sha256.h"
#include "util/timeutil.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define MAX_FIELD 8192  /* bytes of a target, params or result kept in a record */
#define MAX_REASON 1024 /* bytes of a reason */
#define MAX_LINE (64 * 1024)

/* ---- setup ------------------------------------------------------------------------- */

int audit_init(durox *dx, const durox_open_options *opts, int need_log, char *errbuf, size_t errlen)
{
	access_state *a = dx->acl;
	a->audit_mode = AUDIT_NONE;
	if (opts != NULL && opts->audit_key != NULL) {
		size_t n = strlen(opts->audit_key);
		if (n == 0) {
			snprintf(errbuf, errlen, "audit_key must not be empty");
			return DUROX_EINVALID;
		}
		if ((a->key = malloc(n)) == NULL)
			goto oom;
		memcpy(a->key, opts->audit_key, n);
		a->keylen = n;
	}
	if (opts != NULL && opts->audit_file != NULL) {
		if (opts->audit_file[0] == '\0') {
			snprintf(errbuf, errlen, "audit_file must not be empty");
			return DUROX_EINVALID;
		}
		if ((a->audit_file = strdup(opts->audit_file)) == NULL)
			goto oom;
	}
	if (!need_log)
		return DUROX_OK;
	if (!dx->st->info.readonly) {
		if (dx->st->audit == NULL || dx->st->ops == NULL) {
			snprintf(errbuf, errlen, "the %s provider keeps no audit log; access control needs one",
			         dx->st->info.provider);
			return DUROX_EUNSUPPORTED;
		}
		a->audit_mode = AUDIT_STORE;
	} else if (a->audit_file != NULL) {
		a->audit_mode = AUDIT_FILE;
	} else {
		snprintf(errbuf, errlen,
		         "store '%s' is open read-only and its audit records need a place: give an audit file "
		         "(audit_file, duroxlua --audit-file) or open the store writable",
		         dx->st->info.location);
		return DUROX_EINVALID;
	}
	return DUROX_OK;
oom:
	snprintf(errbuf, errlen, "out of memory");
	return DUROX_ENOMEM;
}

int audit_active(const durox *dx) { return dx->acl != NULL && dx->acl->audit_mode != AUDIT_NONE; }

const char *audit_mode_name(const durox *dx)
{
	if (dx->acl == NULL)
		return "none";
	switch (dx->acl->audit_mode) {
	case AUDIT_STORE: return "store";
	case AUDIT_FILE: return "file";
	default: return "none";
	}
}

/* ---- the canonical text and the hash ----------------------------------------------------- */

static void add_key(buf *b, const char *k)
{
	buf_addc(b, ',');
	buf_add_json_string(b, k, strlen(k));
	buf_addc(b, ':');
}

static void add_text(buf *b, const char *k, const char *v)
{
	add_key(b, k);
	if (v == NULL)
		buf_adds(b, "null");
	else
		buf_add_json_string(b, v, strlen(v));
}

/* The canonical JSON text of r without its hash (see docs/access-control.md). Members in this
 * order; params, result and roles are JSON held as text and appear as they are. */
static void canonical(buf *b, const store_audit_row *r)
{
	buf_adds(b, "{\"seq\":");
	buf_addi64(b, (int64_t)r->seq);
	add_key(b, "time");
	buf_addi64(b, r->at_ms);
	add_text(b, "user_id", r->user_id);
	add_key(b, "roles");
	buf_adds(b, r->roles != NULL ? r->roles : "null");
	add_text(b, "source_ip", r->source_ip);
	add_text(b, "context_reason", r->context_reason);
	add_text(b, "operation", r->operation);
	add_text(b, "target", r->target);
	add_text(b, "decision", r->decision);
	add_text(b, "reason", r->reason);
	add_text(b, "policy", r->policy);
	add_key(b, "params");
	buf_adds(b, r->params != NULL ? r->params : "null");
	add_key(b, "result");
	buf_adds(b, r->result != NULL ? r->result : "null");
	add_text(b, "prev_hash", r->prev_hash);
	buf_addc(b, '}');
}

static void hash_hex(const access_state *a, const char *text, size_t n, char out[65])
{
	uint8_t d[SHA256_LEN];
	if (a->key != NULL)
		hmac_sha256(a->key, a->keylen, text, n, d);
	else
		sha256(text, n, d);
	hex_encode(d, SHA256_LEN, out);
}

/* A copy of s cut to at most max bytes at a UTF-8 boundary, with "..." when cut. */
static const char *clip(arena *m, const char *s, size_t max)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s);
	if (n <= max)
		return s;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	char *c = arena_alloc(m, max + 4);
	if (c == NULL)
		return NULL;
	memcpy(c, s, max);
	memcpy(c + max, "...", 4);
	return c;
}

void audit_result_code(buf *b, int rc, const char *message)
{
	buf_adds(b, "{\"code\":");
	const char *c = durox_code_name(rc);
	buf_add_json_string(b, c, strlen(c));
	if (rc != DUROX_OK && message != NULL && message[0] != '\0') {
		buf_adds(b, ",\"message\":");
		size_t n = strlen(message);
		buf_add_json_string(b, message, n < 1024 ? n : 1024);
	}
	buf_addc(b, '}');
}

/* ---- the file ---------------------------------------------------------------------------- */

/* The seq and hash of the last line of the file open at fd (seq 0 when empty). */
static int file_head(durox *dx, int fd, const char *path, uint64_t *seq, char hash[65])
{
	*seq = 0;
	hash[0] = '\0';
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return dx_fail(dx, DUROX_EIO, "audit file %s: %s", path, strerror(errno));
	if (sb.st_size == 0)
		return DUROX_OK;
	size_t n = sb.st_size < MAX_LINE ? (size_t)sb.st_size : MAX_LINE;
	char *tail = malloc(n + 1);
	if (tail == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	ssize_t got = pread(fd, tail, n, sb.st_size - (off_t)n);
	int rc = DUROX_OK;
	if (got != (ssize_t)n) {
		rc = dx_fail(dx, DUROX_EIO, "audit file %s: cannot read its end", path);
		goto done;
	}
	tail[n] = '\0';
	if (tail[n - 1] != '\n') {
		rc = dx_fail(dx, DUROX_ECORRUPT, "audit file %s ends with a partial record; repair it before appending",
		             path);
		goto done;
	}
	size_t start = n - 1;
	while (start > 0 && tail[start - 1] != '\n')
		start--;
	if (start == 0 && (size_t)sb.st_size > n) {
		rc = dx_fail(dx, DUROX_ECORRUPT, "audit file %s: its last record is too long", path);
		goto done;
	}
	arena m;
	arena_init(&m);
	json *o = json_parse(&m, tail + start, n - 1 - start, NULL, 0);
	int64_t s;
	const char *h = json_get_str(o, "hash");
	if (o == NULL || !json_get_i64(o, "seq", &s) || s <= 0 || h == NULL || strlen(h) != 64)
		rc = dx_fail(dx, DUROX_ECORRUPT, "audit file %s: its last record is unreadable", path);
	else {
		*seq = (uint64_t)s;
		memcpy(hash, h, 65);
	}
	arena_release(&m);
done:
	free(tail);
	return rc;
}

static int file_append(durox *dx, store_audit_row *r)
{
	access_state *a = dx->acl;
	const char *path = a->audit_file;
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return dx_fail(dx, DUROX_EIO, "audit file %s: %s", path, strerror(errno));
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	int rc = DUROX_OK;
	while (fcntl(fd, F_SETLKW, &fl) != 0) {
		if (errno != EINTR) {
			rc = dx_fail(dx, DUROX_EIO, "audit file %s: cannot lock it: %s", path, strerror(errno));
			goto done;
		}
	}
	char prev[65];
	uint64_t seq;
	if ((rc = file_head(dx, fd, path, &seq, prev)) != DUROX_OK)
		goto done;
	r->seq = seq + 1;
	r->prev_hash = seq == 0 ? ZERO_HASH : prev;
	buf b;
	buf_init(&b);
	canonical(&b, r);
	char h[65];
	if (!buf_oom(&b)) {
		hash_hex(a, b.data, b.len, h);
		b.len--; /* the closing brace */
		buf_adds(&b, ",\"hash\":\"");
		buf_adds(&b, h);
		buf_adds(&b, "\"}\n");
	}
	if (buf_oom(&b)) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
	} else {
		size_t off = 0;
		while (off < b.len) {
			ssize_t w = write(fd, b.data + off, b.len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = dx_fail(dx, DUROX_EIO, "audit file %s: %s", path, strerror(errno));
				break;
			}
			off += (size_t)w;
		}
		if (rc == DUROX_OK && fsync(fd) != 0)
			rc = dx_fail(dx, DUROX_EIO, "audit file %s: %s", path, strerror(errno));
	}
	buf_free(&b);
done:
	close(fd); /* releases the lock */
	return rc;
}

/* Calls cb for every line of the file (without its newline), with its 1-based number. */
typedef int (*line_cb)(void *ud, uint64_t lineno, const char *line, size_t n);

static int file_lines(durox *dx, const char *path, line_cb cb, void *ud)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return dx_fail(dx, DUROX_ENOTFOUND, "audit file %s does not exist", path);
		return dx_fail(dx, DUROX_EIO, "audit file %s: %s", path, strerror(errno));
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t no = 0;
	int rc = DUROX_OK;
	while ((n = getline(&line, &cap, f)) >= 0) {
		no++;
		if (n == 0 || line[n - 1] != '\n') {
			rc = dx_fail(dx, DUROX_ECORRUPT, "audit file %s: line %llu is a partial record", path,
			             (unsigned long long)no);
			break;
		}
		line[--n] = '\0';
		if ((rc = cb(ud, no, line, (size_t)n)) != DUROX_OK)
			break;
	}
	if (rc == DUROX_OK && ferror(f))
		rc = dx_fail(dx, DUROX_EIO, "audit file %s: %s", path, strerror(errno));
	free(line);
	fclose(f);
	return rc;
}

/* A file line as a row (strings in m; params and result re-emitted as JSON text). */
static int parse_line(arena *m, const char *line, size_t n, store_audit_row *r)
{
	memset(r, 0, sizeof *r);
	json *o = json_parse(m, line, n, NULL, 0);
	int64_t v;
	if (o == NULL || o->type != JSON_OBJECT || !json_get_i64(o, "seq", &v) || v <= 0)
		return -1;
	r->seq = (uint64_t)v;
	r->at_ms = json_get_i64(o, "time", &v) ? v : 0;
	r->user_id = json_get_str(o, "user_id");
	r->source_ip = json_get_str(o, "source_ip");
	r->context_reason = json_get_str(o, "context_reason");
	r->operation = json_get_str(o, "operation");
	r->target = json_get_str(o, "target");
	r->decision = json_get_str(o, "decision");
	r->reason = json_get_str(o, "reason");
	r->policy = json_get_str(o, "policy");
	r->prev_hash = json_get_str(o, "prev_hash");
	r->hash = json_get_str(o, "hash");
	const char *keys[] = {"roles", "params", "result"};
	const char **dst[] = {&r->roles, &r->params, &r->result};
	for (int k = 0; k < 3; k++) {
		const json *x = json_get(o, keys[k]);
		if (x == NULL)
			continue;
		buf b;
		buf_init(&b);
		json_emit(&b, x);
		*dst[k] = buf_oom(&b) ? NULL : arena_strdup(m, b.data);
		buf_free(&b);
	}
	return r->operation != NULL && r->decision != NULL && r->prev_hash != NULL && r->hash != NULL ? 0 : -1;
}

/* ---- appending ------------------------------------------------------------------------------ */

static int store_append(durox *dx, store_audit_row *r, int in_txn)
{
	store *st = dx->st;
	int rc = DUROX_OK;
	if (!in_txn) {
		for (int attempt = 0;; attempt++) {
			rc = st->ops->begin(st);
			if (rc != DUROX_EBUSY || attempt >= 4)
				break;
			st->err[0] = '\0';
			struct timespec ts = {0, (long)(50L << attempt) * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (rc != DUROX_OK)
			return rc;
	}
	char prev[65];
	uint64_t seq = 0;
	rc = st->audit->create(st);
	if (rc == DUROX_OK)
		rc = st->audit->head(st, &seq, prev);
	buf b;
	buf_init(&b);
	char h[65];
	if (rc == DUROX_OK) {
		r->seq = seq + 1;
		r->prev_hash = seq == 0 ? ZERO_HASH : prev;
		canonical(&b, r);
		if (buf_oom(&b))
			rc = store_fail(st, DUROX_ENOMEM, "out of memory");
		else {
			hash_hex(dx->acl, b.data, b.len, h);
			r->hash = h;
			rc = st->audit->append(st, r);
		}
	}
	buf_free(&b);
	if (!in_txn) {
		if (rc == DUROX_OK)
			rc = st->ops->commit(st);
		if (rc != DUROX_OK)
			st->ops->rollback(st);
	}
	return rc;
}

int audit_append(durox *dx, const audit_entry *e, int in_txn)
{
	access_state *a = dx->acl;
	if (a == NULL || a->audit_mode == AUDIT_NONE)
		return DUROX_OK;
	arena m;
	arena_init(&m);
	store_audit_row r;
	memset(&r, 0, sizeof r);
	r.at_ms = time_now_ms();
	r.user_id = a->user_id;
	r.roles = a->roles_json;
	r.source_ip = a->source_ip;
	r.context_reason = a->reason;
	r.operation = e->operation;
	r.target = clip(&m, e->target, MAX_FIELD);
	r.decision = e->decision;
	r.reason = clip(&m, e->reason, MAX_REASON);
	r.policy = a->enabled ? a->policy_id : NULL;
	r.params = e->params != NULL && strlen(e->params) <= MAX_FIELD ? e->params : "{}";
	r.result = e->result != NULL && strlen(e->result) <= MAX_FIELD ? e->result : "{}";
	int rc;
	if ((e->target != NULL && r.target == NULL) || (e->reason != NULL && r.reason == NULL)) {
		rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
	} else if (a->audit_mode == AUDIT_FILE) {
		char saved[sizeof dx->err];
		snprintf(saved, sizeof saved, "%s", dx->err);
		rc = file_append(dx, &r);
		if (rc != DUROX_OK) {
			char msg[sizeof dx->err];
			snprintf(msg, sizeof msg, "%s", dx->err);
			dx_fail(dx, rc, "the audit record could not be written (%s); the operation was refused", msg);
		} else {
			snprintf(dx->err, sizeof dx->err, "%s", saved);
		}
	} else {
		rc = store_append(dx, &r, in_txn);
		if (rc != DUROX_OK) {
			const char *why = dx->st->err[0] ? dx->st->err : durox_code_name(rc);
			char msg[sizeof dx->err];
			snprintf(msg, sizeof msg, "%s", why);
			dx->st->err[0] = '\0';
			dx_fail(dx, rc, "the audit record could not be written (%s); the operation was refused", msg);
		}
	}
	arena_release(&m);
	return rc;
}

/* ---- reading --------------------------------------------------------------------------------- */

typedef struct audit_result {
	durox_audit_list pub;
	arena mem;
	size_t cap;
	/* file reads keep the newest `limit` matches */
	const durox_audit_query *q;
	uint32_t limit;
	int rc;
} audit_result;

void durox_audit_list_free(durox_audit_list *l)
{
	if (l == NULL)
		return;
	audit_result *r = (audit_result *)l;
	arena_release(&r->mem);
	free(r);
}

static int push_row(audit_result *res, const store_audit_row *r)
{
	if (res->pub.count == res->cap) {
		size_t cap = res->cap ? res->cap * 2 : 32;
		durox_audit_record *v = arena_calloc(&res->mem, cap, sizeof *v);
		if (v == NULL)
			return DUROX_ENOMEM;
		if (res->pub.count)
			memcpy(v, res->pub.items, res->pub.count * sizeof *v);
		res->pub.items = v;
		res->cap = cap;
	}
	durox_audit_record *o = &res->pub.items[res->pub.count];
	memset(o, 0, sizeof *o);
	o->seq = r->seq;
	o->time = r->at_ms;
	arena *a = &res->mem;
#define DUP(dst, src)                                                                                                  \
	if ((src) != NULL && ((dst) = arena_strdup(a, (src))) == NULL)                                                 \
		return DUROX_ENOMEM;
	DUP(o->user_id, r->user_id)
	DUP(o->roles, r->roles)
	DUP(o->source_ip, r->source_ip)
	DUP(o->context_reason, r->context_reason)
	DUP(o->operation, r->operation)
	DUP(o->target, r->target)
	DUP(o->decision, r->decision)
	DUP(o->reason, r->reason)
	DUP(o->policy, r->policy)
	DUP(o->params, r->params)
	DUP(o->result, r->result)
	DUP(o->prev_hash, r->prev_hash)
	DUP(o->hash, r->hash)
#undef DUP
	res->pub.count++;
	return DUROX_OK;
}

static int store_row_cb(void *ud, const store_audit_row *r)
{
	audit_result *res = ud;
	if ((res->rc = push_row(res, r)) != DUROX_OK)
		return -1;
	return 0;
}

static int matches(const durox_audit_query *q, const store_audit_row *r)
{
	if (q->since != 0 && q->since != DUROX_NO_TIME && r->at_ms < q->since)
		return 0;
	if (q->user_id != NULL && (r->user_id == NULL || strcmp(q->user_id, r->user_id) != 0))
		return 0;
	if (q->operation != NULL && strcmp(q->operation, r->operation) != 0)
		return 0;
	return 1;
}

static int file_row_cb(void *ud, uint64_t lineno, const char *line, size_t n)
{
	audit_result *res = ud;
	arena m;
	arena_init(&m);
	store_audit_row r;
	int rc = DUROX_OK;
	if (parse_line(&m, line, n, &r) != 0) {
		res->rc = DUROX_ECORRUPT;
		res->pub.count = (size_t)lineno; /* reported by the caller */
		rc = DUROX_ECORRUPT;
	} else if (matches(res->q, &r)) {
		rc = push_row(res, &r);
		/* keep only the newest `limit`: drop the oldest half when twice as many are held */
		if (rc == DUROX_OK && res->pub.count >= 2 * (size_t)res->limit) {
			memmove(res->pub.items, res->pub.items + res->limit, res->limit * sizeof *res->pub.items);
			res->pub.count = res->limit;
		}
		if (rc != DUROX_OK)
			res->rc = rc;
	}
	arena_release(&m);
	return rc;
}

int durox_get_audit_log(durox *dx, const durox_audit_query *q, durox_audit_list **out)
{
	*out = NULL;
	dx_clear(dx);
	static const durox_audit_query none = {0};
	if (q == NULL)
		q = &none;
	int rc = access_global(dx, "get_audit_log", DUROX_HOOK_VIEW_AUDIT);
	if (rc != DUROX_OK)
		return rc;
	audit_result *res = calloc(1, sizeof *res);
	if (res == NULL)
		return dx_fail(dx, DUROX_ENOMEM, "out of memory");
	arena_init(&res->mem);
	res->q = q;
	res->limit = q->limit ? q->limit : 100;
	if (q->file != NULL) {
		rc = file_lines(dx, q->file, file_row_cb, res);
		if (rc == DUROX_ECORRUPT && res->rc == DUROX_ECORRUPT && dx->err[0] == '\0')
			rc = dx_fail(dx, rc, "audit file %s: line %zu is not an audit record", q->file, res->pub.count);
		else if (rc != DUROX_OK && res->rc == DUROX_ENOMEM)
			rc = dx_fail(dx, DUROX_ENOMEM, "out of memory");
		if (rc == DUROX_OK && res->pub.count > res->limit) {
			size_t drop = res->pub.count - res->limit;
			memmove(res->pub.items, res->pub.items + drop, res->limit * sizeof *res->pub.items);
			res->pub.count = res->limit;
		}
	} else if (dx->st->audit != NULL) {
		store_audit_query sq = {q->since != 0 ? q->since : DUROX_NO_TIME, q->user_id, q->operation, res->limit,
		                        1};
		rc = dx->st->audit->read(dx->st, &sq, store_row_cb, res);
		if (rc != DUROX_OK)
			rc = res->rc != DUROX_OK ? dx_fail(dx, res->rc, "out of memory") : dx_store_fail(dx, rc);
		/* newest first from the store: ascending for the caller */
		for (size_t i = 0, j = res->pub.count; rc == DUROX_OK && i + 1 < j; i++, j--) {
			durox_audit_record t = res->pub.items[i];
			res->pub.items[i] = res->pub.items[j - 1];
			res->pub.items[j - 1] = t;
		}
	}
	if (rc != DUROX_OK) {
		durox_audit_list_free(&res->pub);
		return rc;
	}
	*out = &res->pub;
	return DUROX_OK;
}

/* ---- verifying ---------------------------------------------------------------------------------- */

typedef struct verifier {
	durox *dx;
	durox_audit_verification v;
	uint64_t last_seq;
	char last_hash[65];
	const char *file; /* NULL: the store */
	int bad;          /* a break was found: the message is set */
} verifier;

static int broken(verifier *vf, uint64_t seq, const char *fmt, const char *detail)
{
	vf->bad = 1;
	vf->v.first_bad = seq;
	if (vf->file != NULL)
		dx_fail(vf->dx, DUROX_ECORRUPT, "audit file %s: record %llu: %s%s", vf->file, (unsigned long long)seq,
		        fmt, detail);
	else
		dx_fail(vf->dx, DUROX_ECORRUPT, "audit record %llu: %s%s", (unsigned long long)seq, fmt, detail);
	return -1;
}

/* Checks one record against its predecessor: the sequence, the link and its own hash. */
static int check(verifier *vf, const store_audit_row *r, const char *hashed, size_t n)
{
	uint64_t want = vf->last_seq + 1;
	if (r->seq != want) {
		char d[96];
		if (r->seq > want)
			snprintf(d, sizeof d, " (records %llu to %llu are missing)", (unsigned long long)want,
			         (unsigned long long)(r->seq - 1));
		else
			snprintf(d, sizeof d, " (expected %llu: records were reordered or duplicated)",
			         (unsigned long long)want);
		return broken(vf, r->seq, "out of sequence", d);
	}
	const char *prev = vf->last_seq == 0 ? ZERO_HASH : vf->last_hash;
	if (r->prev_hash == NULL || strcmp(r->prev_hash, prev) != 0)
		return broken(vf, r->seq, "its link to the previous record does not match",
		              vf->last_seq == 0 ? " (not the first record of a chain)"
		                                : " (the previous record was edited, removed or reordered)");
	char h[65];
	hash_hex(vf->dx->acl, hashed, n, h);
	if (r->hash == NULL || strcmp(r->hash, h) != 0)
		return broken(vf, r->seq, "its hash does not match its content",
		              vf->dx->acl->key != NULL ? " (edited, or written with another audit_key)"
		                                       : " (edited, or written with an audit_key)");
	vf->last_seq = r->seq;
	snprintf(vf->last_hash, sizeof vf->last_hash, "%s", r->hash);
	vf->v.records++;
	return 0;
}

static int verify_store_cb(void *ud, const store_audit_row *r)
{
	verifier *vf = ud;
	buf b;
	buf_init(&b);
	canonical(&b, r);
	if (buf_oom(&b)) {
		buf_free(&b);
		dx_fail(vf->dx, DUROX_ENOMEM, "out of memory");
		return -1;
	}
	int rc = check(vf, r, b.data, b.len);
	buf_free(&b);
	return rc;
}

static int verify_line_cb(void *ud, uint64_t lineno, const char *line, size_t n)
{
	verifier *vf = ud;
	arena m;
	arena_init(&m);
	store_audit_row r;
	int rc = DUROX_OK;
	static const char suffix[] = ",\"hash\":\"";
	size_t sl = sizeof suffix - 1;
	/* the hashed text: the line without ,"hash":"<64 hex>" before its closing brace */
	if (parse_line(&m, line, n, &r) != 0 || n < sl + 66 || memcmp(line + n - 66 - sl, suffix, sl) != 0 ||
	    line[n - 1] != '}' || line[n - 2] != '"') {
		vf->bad = 1;
		vf->v.first_bad = lineno;
		rc = dx_fail(vf->dx, DUROX_ECORRUPT, "audit file %s: line %llu is not an audit record", vf->file,
		             (unsigned long long)lineno);
	} else {
		size_t cut = n - 66 - sl;
		char *hashed = arena_alloc(&m, cut + 2);
		if (hashed == NULL) {
			rc = dx_fail(vf->dx, DUROX_ENOMEM, "out of memory");
		} else {
			memcpy(hashed, line, cut);
			hashed[cut] = '}';
			hashed[cut + 1] = '\0';
			if (check(vf, &r, hashed, cut + 1) != 0)
				rc = DUROX_ECORRUPT;
		}
	}
	arena_release(&m);
	return rc;
}

int durox_verify_audit_log(durox *dx, const char *file, durox_audit_verification *out)
{
	dx_clear(dx);
	verifier vf;
	memset(&vf, 0, sizeof vf);
	vf.dx = dx;
	vf.file = file;
	if (out != NULL)
		memset(out, 0, sizeof *out);
	int rc = access_global(dx, "verify_audit_log", DUROX_HOOK_VIEW_AUDIT);
	if (rc != DUROX_OK)
		return rc;
	if (file != NULL) {
		rc = file_lines(dx, file, verify_line_cb, &vf);
	} else if (dx->st->audit != NULL) {
		store_audit_query q = {DUROX_NO_TIME, NULL, NULL, 0, 0};
		rc = dx->st->audit->read(dx->st, &q, verify_store_cb, &vf);
		if (rc != DUROX_OK && !vf.bad && rc != DUROX_EABORT)
			rc = dx_store_fail(dx, rc);
		else if (vf.bad)
			rc = DUROX_ECORRUPT;
		else if (rc == DUROX_EABORT)
			rc = DUROX_ENOMEM; /* the message is set */
	}
	vf.v.head_seq = vf.last_seq;
	snprintf(vf.v.head_hash, sizeof vf.v.head_hash, "%s", vf.last_hash);
	if (out != NULL)
		*out = vf.v;
	return rc;
}
