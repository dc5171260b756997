/*
 * test_access.c - unit tests of access control through the C policy interface (durox.h) and of
 * the audit log on an in-memory store and a JSON Lines file: fail-closed hooks, constant
 * answers, denials and their records, the hash chain and its verification, tampering with the
 * file, the bulk ceiling, read-only handles and ownership of the policy. The Lua policies and
 * the scenario stores are covered by tests/spec/access_*_spec.lua.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durox.h"
#include "t.h"

typedef struct pol_state {
	int released;
	int start_calls;
} pol_state;

static void release(void *ud) { ((pol_state *)ud)->released++; }

static int start_hook(void *ud, const durox_access_context *ctx, const char *name, const char *id, char *why, size_t n)
{
	pol_state *p = ud;
	p->start_calls++;
	(void)id;
	if (ctx->n_roles > 0 && strcmp(ctx->roles[0], "operator") == 0 && strncmp(name, "Echo", 4) == 0)
		return DUROX_ACCESS_ALLOW;
	snprintf(why, n, "only operators start Echo");
	return DUROX_ACCESS_DENY;
}

static int metrics_fails(void *ud, const durox_access_context *ctx, char *why, size_t n)
{
	(void)ud;
	(void)ctx;
	snprintf(why, n, "broken");
	return -7; /* a failing policy denies */
}

static int list_by_prefix(void *ud, const durox_access_context *ctx, durox_filter **f, char *why, size_t n)
{
	(void)ud;
	(void)ctx;
	(void)why;
	(void)n;
	return durox_filter_parse("name STARTS_WITH 'Echo'", f, NULL, 0) == DUROX_OK ? DUROX_ACCESS_FILTER : -1;
}

static durox *open_with(durox_access_policy *p, const char *const *roles, size_t n_roles, int readonly,
                        const char *file, int *rc_out)
{
	durox *dx = NULL;
	char err[512];
	durox_access_context ctx = {"alice", roles, n_roles, "10.1.2.3", NULL};
	durox_open_options o = {.readonly = readonly, .policy = p, .context = &ctx, .audit_file = file};
	int rc = durox_open("sqlite::memory:", &o, &dx, err, sizeof err);
	if (rc_out != NULL)
		*rc_out = rc;
	else
		EQ_INT(rc, DUROX_OK);
	return dx;
}

TEST(access_hooks_fail_closed)
{
	pol_state st = {0, 0};
	durox_access_policy p = {0};
	p.ud = &st;
	p.can_start_orchestration = start_hook;
	p.can_view_metrics = metrics_fails;
	p.can_list_instances = list_by_prefix;
	p.always_allow = 1u << DUROX_HOOK_VIEW_INSTANCE;
	p.id = "test-policy";
	p.source = "test_access.c";
	p.max_bulk_operations = 50;
	p.release = release;
	const char *op[] = {"operator"};
	durox *dx = open_with(&p, op, 1, 0, NULL, NULL);
	durox_access_info ai;
	durox_get_access_info(dx, &ai);
	EQ_INT(ai.enabled, 1);
	EQ_STR(ai.policy, "test-policy");
	EQ_STR(ai.user_id, "alice");
	EQ_STR(ai.audit, "store");
	EQ_INT(ai.max_bulk_operations, 50);

	EQ_INT(durox_start_orchestration(dx, "e-1", "Echo", "1", NULL), DUROX_OK);
	EQ_INT(durox_start_orchestration(dx, "o-1", "Order", "1", NULL), DUROX_EDENIED);
	EQ_STR(durox_errmsg(dx), "access denied: user 'alice' may not start orchestration 'Order' as instance 'o-1': "
	                         "only operators start Echo");
	EQ_INT(st.start_calls, 2);
	/* a hook that fails denies; a NULL hook denies */
	durox_runtime_metrics rm;
	EQ_INT(durox_get_runtime_metrics(dx, NULL, &rm), DUROX_EDENIED);
	EQ_STR(durox_errmsg(dx), "access denied: user 'alice' may not view metrics: broken");
	durox_job_list *jl = NULL;
	EQ_INT(durox_job_list_jobs(dx, NULL, NULL, 0, &jl), DUROX_EDENIED);
	EQ_STR(durox_errmsg(dx),
	       "access denied: user 'alice' may not manage bulk jobs: can_manage_jobs is not defined by the policy");
	CHECK(jl == NULL);
	durox_audit_list *al = NULL;
	EQ_INT(durox_get_audit_log(dx, NULL, &al), DUROX_EDENIED);
	/* the instance the start queued has no row yet: under a policy it is not found */
	EQ_INT(durox_cancel_instance(dx, "e-1", "x"), DUROX_ENOTFOUND);
	EQ_STR(durox_errmsg(dx), "instance 'e-1' not found");
	durox_orchestration_status *os = NULL;
	EQ_INT(durox_get_orchestration_status(dx, "e-1", &os), DUROX_OK);
	EQ_INT(os->status, DUROX_STATUS_NOT_FOUND);
	durox_orchestration_status_free(os);
	/* the bulk ceiling: max_bulk_operations cannot be raised past the policy's cap */
	durox_config cfg;
	durox_get_config(dx, &cfg);
	cfg.max_bulk_operations = 51;
	EQ_INT(durox_set_config(dx, &cfg), DUROX_EDENIED);
	cfg.max_bulk_operations = 50;
	EQ_INT(durox_set_config(dx, &cfg), DUROX_OK);
	const char *ids[] = {"e-1", "nope"};
	durox_bulk_cancel_request bc = {{0}, "r"};
	bc.opts.instances = ids;
	bc.opts.n_instances = 2;
	bc.opts.max_instances = 51;
	durox_bulk_response *br = NULL;
	EQ_INT(durox_cancel_instances(dx, &bc, &br), DUROX_ELIMIT);
	EQ_STR(durox_errmsg(dx), "max_instances 51 exceeds 50, the largest bulk operation the access policy allows");
	bc.opts.max_instances = 0;
	EQ_INT(durox_cancel_instances(dx, &bc, &br), DUROX_OK);
	EQ_INT(br->job_id, 0); /* nothing to act on: no job */
	EQ_INT(br->failed, 2);
	EQ_INT(br->items[0].code, DUROX_ENOTFOUND);
	EQ_STR(br->items[0].message, "instance 'e-1' not found");
	EQ_STR(br->items[1].message, "instance 'nope' not found");
	durox_bulk_response_free(br);
	durox_close(dx);
	EQ_INT(st.released, 1);
}

static int allow_all_global(void *ud, const durox_access_context *ctx, char *why, size_t n)
{
	(void)ud;
	(void)ctx;
	(void)why;
	(void)n;
	return DUROX_ACCESS_ALLOW;
}

TEST(access_audit_records_and_chain)
{
	pol_state st = {0, 0};
	durox_access_policy p = {0};
	p.ud = &st;
	p.can_start_orchestration = start_hook;
	p.can_view_audit = allow_all_global;
	p.id = "chain-policy";
	p.release = release;
	const char *roles[] = {"operator", "viewer"};
	durox *dx = open_with(&p, roles, 2, 0, NULL, NULL);
	EQ_INT(durox_start_orchestration(dx, "e-1", "Echo", "1", NULL), DUROX_OK);
	EQ_INT(durox_start_orchestration(dx, "e-1", "Echo", "1", NULL), DUROX_ECONFLICT);
	EQ_INT(durox_start_orchestration(dx, "o-1", "Order", NULL, NULL), DUROX_EDENIED);
	durox_audit_list *al = NULL;
	EQ_INT(durox_get_audit_log(dx, NULL, &al), DUROX_OK);
	EQ_INT(al->count, 4);
	if (al->count == 4) {
		EQ_STR(al->items[0].operation, "policy_load");
		EQ_STR(al->items[0].prev_hash, "0000000000000000000000000000000000000000000000000000000000000000");
		EQ_STR(al->items[1].operation, "start_orchestration");
		EQ_STR(al->items[1].target, "e-1");
		EQ_STR(al->items[1].decision, "allow");
		EQ_STR(al->items[1].result, "{\"code\":\"OK\"}");
		EQ_STR(al->items[1].params, "{\"name\":\"Echo\",\"version\":null,\"input_bytes\":1}");
		EQ_STR(al->items[1].roles, "[\"operator\",\"viewer\"]");
		EQ_STR(al->items[1].source_ip, "10.1.2.3");
		EQ_STR(al->items[1].policy, "chain-policy");
		EQ_STR(al->items[2].result,
		       "{\"code\":\"CONFLICT\",\"message\":\"instance 'e-1' already exists (its start is queued)\"}");
		EQ_STR(al->items[3].decision, "deny");
		EQ_STR(al->items[3].reason, "only operators start Echo");
		for (size_t k = 1; k < al->count; k++) {
			EQ_INT(al->items[k].seq, k + 1);
			EQ_STR(al->items[k].prev_hash, al->items[k - 1].hash);
		}
	}
	durox_audit_list_free(al);
	durox_audit_query q = {0};
	q.operation = "start_orchestration";
	q.limit = 2;
	EQ_INT(durox_get_audit_log(dx, &q, &al), DUROX_OK);
	EQ_INT(al->count, 2); /* the newest two, oldest first */
	if (al->count == 2) {
		EQ_INT(al->items[0].seq, 3);
		EQ_INT(al->items[1].seq, 4);
	}
	durox_audit_list_free(al);
	durox_audit_verification v;
	EQ_INT(durox_verify_audit_log(dx, NULL, &v), DUROX_OK);
	EQ_INT(v.records, 4);
	EQ_INT(v.head_seq, 4);
	EQ_INT(strlen(v.head_hash), 64);
	durox_close(dx);
	EQ_INT(st.released, 1);
}

/* Replaces the first occurrence of from by to (same length) in the file. */
static int patch_file(const char *path, const char *from, const char *to)
{
	FILE *f = fopen(path, "r+b");
	if (f == NULL)
		return -1;
	char data[65536];
	size_t n = fread(data, 1, sizeof data - 1, f);
	data[n] = '\0';
	char *at = strstr(data, from);
	if (at == NULL) {
		fclose(f);
		return -1;
	}
	memcpy(at, to, strlen(to));
	fseek(f, 0, SEEK_SET);
	fwrite(data, 1, n, f);
	fclose(f);
	return 0;
}

TEST(access_readonly_audit_file)
{
	char path[] = "/tmp/durox-audit-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	unlink(path); /* created by the first record */
	pol_state st = {0, 0};
	durox_access_policy p = {0};
	p.ud = &st;
	p.release = release;
	p.can_view_audit = allow_all_global;
	const char *roles[] = {"viewer"};
	/* read-only with a policy and no audit file: refused, and the policy is released */
	int rc;
	durox *dx = open_with(&p, roles, 1, 1, NULL, &rc);
	EQ_INT(rc, DUROX_EINVALID);
	CHECK(dx == NULL);
	EQ_INT(st.released, 1);
	/* with a file: the load and every denial go there */
	dx = open_with(&p, roles, 1, 1, path, NULL);
	durox_access_info ai;
	durox_get_access_info(dx, &ai);
	EQ_STR(ai.audit, "file");
	EQ_STR(ai.audit_file, path);
	durox_runtime_metrics rm;
	EQ_INT(durox_get_runtime_metrics(dx, NULL, &rm), DUROX_EDENIED);
	EQ_INT(durox_get_queue_metrics(dx, NULL, &(durox_queue_metrics){0}), DUROX_EDENIED);
	durox_audit_query q = {0};
	q.file = path;
	durox_audit_list *al = NULL;
	EQ_INT(durox_get_audit_log(dx, &q, &al), DUROX_OK);
	EQ_INT(al->count, 3);
	if (al->count == 3) {
		EQ_STR(al->items[0].operation, "policy_load");
		EQ_STR(al->items[1].operation, "get_runtime_metrics");
		EQ_STR(al->items[1].decision, "deny");
		EQ_STR(al->items[1].reason, "can_view_metrics is not defined by the policy");
		EQ_STR(al->items[2].operation, "get_queue_metrics");
		EQ_STR(al->items[2].prev_hash, al->items[1].hash);
	}
	durox_audit_list_free(al);
	durox_audit_verification v;
	EQ_INT(durox_verify_audit_log(dx, path, &v), DUROX_OK);
	EQ_INT(v.records, 3);
	/* an edited record breaks the chain at that record */
	CHECK(patch_file(path, "\"get_runtime_metrics\"", "\"get_runtime_metricz\"") == 0);
	EQ_INT(durox_verify_audit_log(dx, path, &v), DUROX_ECORRUPT);
	EQ_INT(v.first_bad, 2);
	EQ_INT(v.records, 1);
	char want[256];
	snprintf(want, sizeof want,
	         "audit file %s: record 2: its hash does not match its content (edited, or written with an audit_key)",
	         path);
	EQ_STR(durox_errmsg(dx), want);
	durox_close(dx);
	EQ_INT(st.released, 2);
	unlink(path);
}
