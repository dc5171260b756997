/*
 * tests.c - the C unit-test runner: runs every TEST listed below (or those named on the
 * command line) and exits 1 if any check failed. Registered with CTest as "c_unit".
 */
#include <stdio.h>
#include <string.h>

#include "t.h"

int t_failures = 0;
const char *t_current = "";

#define T(name) void test_##name(void);
#define TESTS                                                                                                          \
	T(json_roundtrip_compact)                                                                                      \
	T(json_strings_and_escapes)                                                                                    \
	T(json_numbers)                                                                                                \
	T(json_errors)                                                                                                 \
	T(time_parse_iso)                                                                                              \
	T(time_parse_user)                                                                                             \
	T(base64url)                                                                                                   \
	T(arena_and_buf)                                                                                               \
	T(open_errors)                                                                                                 \
	T(empty_memory_store)                                                                                          \
	T(filter_validation)                                                                                           \
	T(page_tokens)                                                                                                 \
	T(names)                                                                                                       \
	T(query_constructs)                                                                                            \
	T(query_precedence)                                                                                            \
	T(query_keywords_any_case)                                                                                     \
	T(query_quoting)                                                                                               \
	T(query_times)                                                                                                 \
	T(query_errors)                                                                                                \
	T(query_limits)                                                                                                \
	T(query_public_api)                                                                                            \
	T(query_roundtrip)                                                                                             \
	T(sha256_vectors)                                                                                              \
	T(hmac_sha256_vectors)                                                                                         \
	T(hmap_put_get_del)                                                                                            \
	T(metrics_empty_store)                                                                                         \
	T(metrics_disabled_and_config)                                                                                 \
	T(metrics_names)                                                                                               \
	T(ops_single_writes)                                                                                           \
	T(ops_bulk_jobs)                                                                                               \
	T(ops_waits)                                                                                                   \
	T(access_hooks_fail_closed)                                                                                    \
	T(access_audit_records_and_chain)                                                                              \
	T(access_readonly_audit_file)                                                                                  \
	T(webhook_backoff)                                                                                             \
	T(webhook_retry_after)                                                                                         \
	T(webhook_signature)                                                                                           \
	T(ops_job_states)                                                                                              \
	T(ops_request_defaults)
TESTS
#undef T

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} all[] = {
#define T(name) {#name, test_##name},
	        TESTS
#undef T
	};
	int ran = 0;
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		int wanted = argc < 2;
		for (int a = 1; a < argc; a++)
			wanted |= strcmp(argv[a], all[i].name) == 0;
		if (!wanted)
			continue;
		t_current = all[i].name;
		int before = t_failures;
		all[i].fn();
		printf("%s %s\n", t_failures == before ? "ok  " : "FAIL", all[i].name);
		ran++;
	}
	printf("%d tests, %d failed checks\n", ran, t_failures);
	return t_failures == 0 && ran > 0 ? 0 : 1;
}
