/*
 * t.h - a tiny unit-test harness for the C core (no dependencies): TEST() functions are
 * registered in tests.c's table, CHECK/EQ record failures with file:line and continue,
 * and the runner exits non-zero if anything failed. Used by the test_*.c files.
 */
#ifndef DUROX_TEST_T_H
#define DUROX_TEST_T_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

extern int t_failures;
extern const char *t_current;

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			t_failures++;                                                                                  \
			fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, t_current, #cond);        \
		}                                                                                                      \
	} while (0)

#define EQ_INT(a, b)                                                                                                   \
	do {                                                                                                           \
		long long a_ = (long long)(a), b_ = (long long)(b);                                                    \
		if (a_ != b_) {                                                                                        \
			t_failures++;                                                                                  \
			fprintf(stderr, "%s:%d: %s: %s == %lld, expected %lld\n", __FILE__, __LINE__, t_current, #a,   \
			        a_, b_);                                                                               \
		}                                                                                                      \
	} while (0)

#define EQ_STR(a, b)                                                                                                   \
	do {                                                                                                           \
		const char *a_ = (a), *b_ = (b);                                                                       \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                                 \
			t_failures++;                                                                                  \
			fprintf(stderr, "%s:%d: %s: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, t_current,   \
			        #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                           \
		}                                                                                                      \
	} while (0)

#define TEST(name)                                                                                                     \
	void test_##name(void);                                                                                        \
	void test_##name(void)

#endif
