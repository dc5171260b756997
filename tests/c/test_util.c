/*
 * test_util.c - unit tests of src/util: JSON reader and writer, timestamps, base64url,
 * arena and buffer.
 */
#include <stdlib.h>

#include "t.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/codec.h"
#include "util/json.h"
#include "util/sha256.h"
#include "util/timeutil.h"

TEST(json_roundtrip_compact)
{
	/* a real Duroxide event, as stored: parse and re-emit must give the same bytes */
	const char *ev =
	        "{\"event_id\":1,\"source_event_id\":null,\"instance_id\":\"can-1\",\"execution_id\":1,"
	        "\"timestamp_ms\":1795684174002,\"duroxide_version\":\"0.1.30\",\"type\":\"OrchestrationStarted\","
	        "\"name\":\"Waiter\",\"version\":\"1.0.0\",\"input\":\"null\",\"parent_instance\":null,\"parent_id\":"
	        "null}";
	arena a;
	arena_init(&a);
	char err[100];
	json *v = json_parse(&a, ev, strlen(ev), err, sizeof err);
	CHECK(v != NULL);
	buf b;
	buf_init(&b);
	json_emit(&b, v);
	EQ_STR(buf_str(&b), ev);
	int64_t ts = 0;
	CHECK(json_get_i64(v, "timestamp_ms", &ts));
	EQ_INT(ts, 1795684174002LL);
	EQ_STR(json_get_str(v, "type"), "OrchestrationStarted");
	CHECK(json_get(v, "parent_id")->type == JSON_NULL);
	CHECK(json_get_str(v, "missing") == NULL);
	buf_free(&b);
	arena_release(&a);
}

TEST(json_strings_and_escapes)
{
	arena a;
	arena_init(&a);
	const char *s = "[\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\u0000x\", \"\\ud800\"]";
	json *v = json_parse(&a, s, strlen(s), NULL, 0);
	CHECK(v != NULL && v->type == JSON_ARRAY && v->count == 2);
	const json *first = json_at(v, 0);
	EQ_INT(first->len, 14);
	CHECK(memcmp(first->str, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80\0x", 14) == 0);
	EQ_STR(json_at(v, 1)->str, "\xef\xbf\xbd"); /* lone surrogate -> U+FFFD */
	buf b;
	buf_init(&b);
	json_emit(&b, first);
	EQ_STR(buf_str(&b), "\"a\\\"b\\\\c\\n\xc3\xa9\xf0\x9f\x98\x80\\u0000x\"");
	buf_free(&b);
	arena_release(&a);
}

TEST(json_numbers)
{
	arena a;
	arena_init(&a);
	const char *s = "[0,-1,9223372036854775807,9223372036854775808,1.5,2e3,-0.25E-2]";
	json *v = json_parse(&a, s, strlen(s), NULL, 0);
	CHECK(v != NULL);
	CHECK(json_at(v, 0)->is_int && json_at(v, 0)->i == 0);
	CHECK(json_at(v, 1)->is_int && json_at(v, 1)->i == -1);
	CHECK(json_at(v, 2)->is_int && json_at(v, 2)->i == INT64_MAX);
	CHECK(!json_at(v, 3)->is_int); /* beyond int64: kept as text and double */
	CHECK(!json_at(v, 4)->is_int && json_at(v, 4)->d == 1.5);
	CHECK(!json_at(v, 5)->is_int && json_at(v, 5)->d == 2000.0);
	buf b;
	buf_init(&b);
	json_emit(&b, v);
	EQ_STR(buf_str(&b), s); /* numbers are re-emitted as written */
	buf_free(&b);
	arena_release(&a);
}

TEST(json_errors)
{
	static const struct {
		const char *text, *msg;
	} cases[] = {
	        {"", "invalid JSON at byte 0: unexpected end of input"},
	        {"{", "invalid JSON at byte 1: expected a string key"},
	        {"{\"a\" 1}", "invalid JSON at byte 5: expected ':'"},
	        {"[1,]", "invalid JSON at byte 3: expected a value"},
	        {"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"},
	        {"\"abc", "invalid JSON at byte 4: unterminated string"},
	        {"\"a\\x\"", "invalid JSON at byte 2: bad escape"},
	        {"\"\\u12\"", "invalid JSON at byte 1: bad \\u escape"},
	        {"01", "invalid JSON at byte 1: trailing characters"},
	        {"1.", "invalid JSON at byte 2: expected digits after '.'"},
	        {"tru", "invalid JSON at byte 0: expected a value"},
	        {"{} x", "invalid JSON at byte 3: trailing characters"},
	        {"\"a\tb\"", "invalid JSON at byte 2: control character in string"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		arena a;
		arena_init(&a);
		char err[120] = "";
		CHECK(json_parse(&a, cases[i].text, strlen(cases[i].text), err, sizeof err) == NULL);
		EQ_STR(err, cases[i].msg);
		arena_release(&a);
	}
	/* nesting bound */
	char deep[600];
	memset(deep, '[', 300);
	memset(deep + 300, ']', 300);
	arena a;
	arena_init(&a);
	char err[120] = "";
	CHECK(json_parse(&a, deep, 600, err, sizeof err) == NULL);
	CHECK(strstr(err, "nesting too deep") != NULL);
	arena_release(&a);
}

TEST(time_parse_iso)
{
	int64_t ms = 0;
	EQ_INT(time_parse_iso("1970-01-01 00:00:00", 19, &ms), 0);
	EQ_INT(ms, 0);
	CHECK(time_parse_iso("2026-11-26 09:43:25", 19, &ms) == 0);
	EQ_INT(ms, 1795686205000LL);
	CHECK(time_parse_iso("2026-11-26T09:43:25.123Z", 24, &ms) == 0);
	EQ_INT(ms, 1795686205123LL);
	CHECK(time_parse_iso("2026-11-26T10:43:25.5+01:00", 27, &ms) == 0);
	EQ_INT(ms, 1795686205500LL);
	CHECK(time_parse_iso("2026-11-26 09:43:25.123456+00", 29, &ms) == 0); /* PostgreSQL text */
	EQ_INT(ms, 1795686205123LL);
	CHECK(time_parse_iso("2024-02-29", 10, &ms) == 0);
	EQ_INT(ms, 1709164800000LL);
	CHECK(time_parse_iso("2023-02-29", 10, &ms) != 0);
	CHECK(time_parse_iso("2026-13-01", 10, &ms) != 0);
	CHECK(time_parse_iso("2026-11-26 25:00", 16, &ms) != 0);
	CHECK(time_parse_iso("2026-11-26x", 11, &ms) != 0);
	CHECK(time_parse_iso("1795686205000", 13, &ms) != 0);
	char out[40];
	time_format_iso(1795686205123LL, out, sizeof out);
	EQ_STR(out, "2026-11-26T09:43:25.123Z");
	time_format_iso(-1, out, sizeof out);
	EQ_STR(out, "1969-12-31T23:59:59.999Z");
	time_format_sql(1795686205999LL, out, sizeof out);
	EQ_STR(out, "2026-11-26 09:43:25");
}

TEST(time_parse_user)
{
	int64_t now = 1795686205000LL, ms = 0;
	char err[300];
	CHECK(time_parse_user("-30m", now, &ms, err, sizeof err) == 0);
	EQ_INT(ms, now - 30 * 60000);
	CHECK(time_parse_user("now() - 1h", now, &ms, err, sizeof err) == 0);
	EQ_INT(ms, now - 3600000);
	CHECK(time_parse_user("now+1d2h", now, &ms, err, sizeof err) == 0);
	EQ_INT(ms, now + 86400000 + 7200000);
	CHECK(time_parse_user("now", now, &ms, err, sizeof err) == 0);
	EQ_INT(ms, now);
	CHECK(time_parse_user("1795686205123", now, &ms, err, sizeof err) == 0);
	EQ_INT(ms, 1795686205123LL);
	CHECK(time_parse_user(" 2026-11-26 ", now, &ms, err, sizeof err) == 0);
	EQ_INT(ms, 1795651200000LL);
	CHECK(time_parse_user("yesterday", now, &ms, err, sizeof err) != 0);
	EQ_STR(err, "invalid time 'yesterday' (expected ISO-8601 like '2026-01-31T12:00:00Z', milliseconds since the "
	            "epoch, or a relative time like '-30m' or 'now-1h')");
	CHECK(time_parse_user("-30", now, &ms, err, sizeof err) != 0);
	CHECK(time_parse_user("-5x", now, &ms, err, sizeof err) != 0);
	CHECK(time_parse_user("", now, &ms, err, sizeof err) != 0);
	int64_t d;
	CHECK(time_parse_duration("1h30m", 5, &d) == 0 && d == 5400000);
	CHECK(time_parse_duration("250ms", 5, &d) == 0 && d == 250);
	CHECK(time_parse_duration("1w", 2, &d) == 0 && d == 604800000);
	CHECK(time_parse_duration("15", 2, &d) != 0);
}

TEST(base64url)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
	for (int i = 0; i < 7; i++) {
		buf b, d;
		buf_init(&b);
		buf_init(&d);
		b64url_encode(&b, plain[i], strlen(plain[i]));
		EQ_STR(buf_str(&b), enc[i]);
		CHECK(b64url_decode(&d, b.data ? b.data : "", b.len) == 0);
		EQ_STR(buf_str(&d), plain[i]);
		buf_free(&b);
		buf_free(&d);
	}
	buf d;
	buf_init(&d);
	unsigned char bin[3] = {0xfb, 0xff, 0xfe};
	b64url_encode(&d, bin, 3);
	EQ_STR(buf_str(&d), "-__-");
	buf_reset(&d);
	CHECK(b64url_decode(&d, "Zm9v!", 5) != 0); /* bad character */
	buf_reset(&d);
	CHECK(b64url_decode(&d, "Z", 1) != 0); /* impossible length */
	buf_reset(&d);
	CHECK(b64url_decode(&d, "Zh", 2) != 0); /* non-canonical trailing bits */
	buf_free(&d);
}

TEST(arena_and_buf)
{
	arena a;
	arena_init(&a);
	char *small = arena_strdup(&a, "abc");
	char *big = arena_alloc(&a, 3 * 1024 * 1024); /* larger than a chunk */
	CHECK(small != NULL && big != NULL);
	memset(big, 'x', 3 * 1024 * 1024);
	char *after = arena_strdup(&a, "def");
	EQ_STR(small, "abc");
	EQ_STR(after, "def");
	CHECK(((uintptr_t)arena_alloc(&a, 1) % _Alignof(max_align_t)) == 0);
	arena_release(&a);
	buf b;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		buf_addf(&b, "%d,", i % 10);
	EQ_INT(b.len, 2000);
	buf_reset(&b);
	buf_add_json_string(&b, "\x01\"\\\t", 4);
	EQ_STR(buf_str(&b), "\"\\u0001\\\"\\\\\\t\"");
	buf_free(&b);
	EQ_STR(buf_str(&b), "");
}

static const char *sha_hex(const void *p, size_t n, char out[65])
{
	uint8_t d[SHA256_LEN];
	sha256(p, n, d);
	hex_encode(d, sizeof d, out);
	return out;
}

TEST(sha256_vectors)
{
	char h[65];
	/* FIPS 180-4 examples and the NIST long-message vector */
	EQ_STR(sha_hex("", 0, h), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	EQ_STR(sha_hex("abc", 3, h), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *m56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	EQ_STR(sha_hex(m56, strlen(m56), h), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	sha256_ctx c;
	sha256_init(&c);
	char as[1000];
	memset(as, 'a', sizeof as);
	for (int i = 0; i < 1000; i++)
		sha256_update(&c, as, sizeof as); /* one million 'a' */
	uint8_t d[SHA256_LEN];
	sha256_final(&c, d);
	hex_encode(d, sizeof d, h);
	EQ_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(hmac_sha256_vectors)
{
	/* RFC 4231 test cases 1, 2 and 6 (a key longer than the block) */
	uint8_t d[SHA256_LEN], key[131];
	char h[65];
	memset(key, 0x0b, 20);
	hmac_sha256(key, 20, "Hi There", 8, d);
	hex_encode(d, sizeof d, h);
	EQ_STR(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
	hex_encode(d, sizeof d, h);
	EQ_STR(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, sizeof key);
	const char *m = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_sha256(key, sizeof key, m, strlen(m), d);
	hex_encode(d, sizeof d, h);
	EQ_STR(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
