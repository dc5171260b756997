/*
 * ops_internal.h - what the engine's write files share: the operation kinds and their
 * parameters, op_apply (check and act on one target inside the caller's transaction, or
 * only classify it), the work-item JSON writers and small helpers. ops.c implements it;
 * jobs.c (bulk jobs) and wait.c use it. Private to src/engine.
 */
#ifndef DUROX_ENGINE_OPS_INTERNAL_H
#define DUROX_ENGINE_OPS_INTERNAL_H

#include "engine/internal.h"
#include "store/ops.h"
#include "util/buf.h"

typedef enum op_kind { OP_CANCEL, OP_RAISE, OP_ENQUEUE, OP_PURGE, OP_PRUNE, OP_RESTART, OP__COUNT } op_kind;

/* "cancel", "raise", "enqueue", "purge", "prune", "restart"; op_kind_parse returns -1 if unknown. */
const char *op_kind_name(int kind);
int op_kind_parse(const char *name);

typedef struct op_params {
	int kind;
	const char *reason;     /* cancel ("" when NULL) */
	const char *event_name; /* raise / enqueue */
	const char *event_data; /* raise / enqueue ("null" when NULL) */
	int check_subscription; /* raise: only targets with an open subscription (bulk) */
	int force;              /* purge */
	int has_keep_last;      /* prune */
	uint32_t keep_last;
	int64_t completed_before;
	int latest_version; /* restart */
} op_params;

/* The outcome of op_apply for one target. Buffers are owned by the caller (op_result_init /
 * op_result_free) and reused across targets. */
typedef struct op_result {
	int outcome; /* durox_outcome */
	int code;    /* FAILED: DUROX_E* */
	buf message; /* FAILED / NO_SUBSCRIPTION: why */
	buf new_id;  /* restart */
	store_delete_counts counts;
} op_result;

void op_result_init(op_result *r);
void op_result_reset(op_result *r);
void op_result_free(op_result *r);

/*
 * Checks one target and, when write is nonzero, acts on it (enqueue, delete, prune) inside
 * the transaction the caller holds; with write 0 it only classifies (dry run, no
 * transaction needed). Returns DUROX_OK with the outcome in *res, or a negative code when
 * the store failed (the caller rolls back; dx's message is set).
 */
int op_apply(durox *dx, const op_params *p, const char *instance_id, int64_t now_ms, int write, op_result *res);

/* Checks that dx may write: DUROX_EDENIED on a read-only handle, DUROX_EUNSUPPORTED when
 * the provider cannot write. Sets the message. */
int op_check_writable(durox *dx);

/* Validates params for kind (names non-empty, valid UTF-8...). Sets the message. */
int op_check_params(durox *dx, const op_params *p);

/* DUROX_ELIMIT (message naming what, its size and the limit) when s is longer than
 * max_payload_bytes (payload nonzero) or max_id_bytes. */
int op_check_size(durox *dx, const char *what, const char *s, int payload);

/* The work items op_apply and restart enqueue, appended to b as Duroxide's compact serde
 * JSON: StartOrchestration (version NULL = null), ExternalRaised (queue 0) / QueueMessage
 * (queue 1), CancelInstance. Strings must be valid UTF-8 (op_valid_utf8); buf_oom(b) tells
 * whether memory ran out. Exposed for tests/fuzz/fuzz_work_item.c. */
void op_encode_start(buf *b, const char *id, const char *name, const char *input, const char *version);
void op_encode_event(buf *b, int queue, const char *id, const char *name, const char *data);
void op_encode_cancel(buf *b, const char *id, const char *reason);

/* Nonzero when s is valid UTF-8 without surrogates (what a Rust String holds). */
int op_valid_utf8(const char *s);

/* Sleeps ms milliseconds (no-op for ms <= 0). */
void op_sleep_ms(int64_t ms);

/* The parameter summary of p for audit records (payloads only by size). */
void op_params_summary(const op_params *p, buf *b);

/* The request JSON journaled for p (the fields of its kind). */
void op_params_to_json(const op_params *p, buf *b);
/* Parses a journaled request into p (strings point into a). Returns 0 or -1. */
int op_params_from_json(arena *a, const char *kind, const char *json_text, op_params *p);

#endif
