/*
 * test_net.c - the webhook retry policy of src/net (delays, caps, jitter bounds, Retry-After
 * in both forms) and its signature (checked against an HMAC-SHA256 computed separately by
 * hmac_sha256 over "<t>.<body>"). Deliveries themselves are tested against a real receiver
 * in tests/spec/webhook_spec.lua.
 */
#include <stdio.h>
#include <string.h>

#include "net/http.h"
#include "t.h"
#include "util/sha256.h"
#include "util/timeutil.h"

TEST(webhook_backoff)
{
	net_webhook wh = {0};
	wh.backoff_ms = 100;
	wh.max_backoff_ms = 1000;
	/* r = 0: the lower half; r -> 1: the full delay */
	EQ_INT(net_webhook_delay(&wh, 1, NULL, 0, 0.0), 50);
	EQ_INT(net_webhook_delay(&wh, 1, NULL, 0, 0.999), 99);
	EQ_INT(net_webhook_delay(&wh, 2, NULL, 0, 0.0), 100);
	EQ_INT(net_webhook_delay(&wh, 3, NULL, 0, 0.0), 200);
	EQ_INT(net_webhook_delay(&wh, 4, NULL, 0, 0.0), 400);
	EQ_INT(net_webhook_delay(&wh, 5, NULL, 0, 0.0), 500); /* capped at 1000, halved */
	EQ_INT(net_webhook_delay(&wh, 60, NULL, 0, 0.0), 500);
	EQ_INT(net_webhook_delay(&wh, 60, NULL, 0, 0.5), 750);
	net_webhook def = {0};
	EQ_INT(net_webhook_delay(&def, 1, NULL, 0, 0.0), 250); /* default 500 ms */
}

TEST(webhook_retry_after)
{
	net_webhook wh = {0};
	wh.backoff_ms = 100;
	wh.max_backoff_ms = 10000;
	EQ_INT(net_webhook_delay(&wh, 1, "3", 0, 0.0), 3000);
	EQ_INT(net_webhook_delay(&wh, 1, "0", 0, 0.5), 0);
	EQ_INT(net_webhook_delay(&wh, 1, "99999", 0, 0.0), 10000); /* capped */
	int64_t now;
	CHECK(time_parse_iso("2026-12-01T10:00:00Z", 20, &now) == 0);
	EQ_INT(net_webhook_delay(&wh, 1, "Tue, 01 Dec 2026 10:00:07 GMT", now, 0.0), 7000);
	EQ_INT(net_webhook_delay(&wh, 1, "Tue, 01 Dec 2026 09:59:00 GMT", now, 0.0), 0); /* in the past */
	/* unreadable values fall back to the backoff */
	EQ_INT(net_webhook_delay(&wh, 1, "soon", now, 0.0), 50);
	EQ_INT(net_webhook_delay(&wh, 1, "-5", now, 0.0), 50);
	EQ_INT(net_webhook_delay(&wh, 1, "Tue, 01 Xyz 2026 10:00:07 GMT", now, 0.0), 50);
}

TEST(webhook_signature)
{
	const char *body = "{\"items\":[]}";
	char sig[128];
	net_webhook_signature("k", 1, 1700000000, body, strlen(body), sig, sizeof sig);
	char msg[64];
	snprintf(msg, sizeof msg, "1700000000.%s", body);
	uint8_t mac[SHA256_LEN];
	hmac_sha256("k", 1, msg, strlen(msg), mac);
	char hex[2 * SHA256_LEN + 1], want[128];
	hex_encode(mac, SHA256_LEN, hex);
	snprintf(want, sizeof want, "t=1700000000,v1=%s", hex);
	EQ_STR(sig, want);
}
