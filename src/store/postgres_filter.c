/*
 * postgres_filter.c - compiles the engine's filter tree (provider.h) into PostgreSQL SQL
 * over `instances i` and the current execution `e`, every value a bound parameter ($n).
 * Text matches follow the SQLite provider exactly: LIKE, CONTAINS and text search are
 * ASCII case-insensitive (lower() under the "C" collation), text order is byte order
 * (COLLATE "C"), and times are ms since the epoch. Used by the PostgreSQL provider's queries.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "store/postgres_index.h"

void pg_bind_push(pgsqlgen *g, const durox_value *v)
{
	if (g->p->n >= 4096) {
		g->overflow = 1;
		buf_adds(&g->sql, "NULL");
		return;
	}
	if (v->type == DUROX_VAL_TEXT)
		pqp_text(g->p, v->text);
	else if (v->type == DUROX_VAL_INT)
		pqp_int(g->p, v->i);
	else
		pqp_null(g->p);
	buf_addf(&g->sql, "$%d", g->p->n);
}

/* The failure kind of a Failed current execution: from the details of its last
 * OrchestrationFailed event (ErrorDetails, serde's externally tagged enum, whose variant is
 * the first key after "details"; in Application and Configuration "kind" comes first in
 * both serde's and jsonb's key order), else from the display text in executions.output, else
 * application; as format_failure_kind() does for the SQLite provider. Read with patterns,
 * not a JSON cast, so a malformed row cannot make the whole query fail. */
#define FAILED_EVENT                                                                                                   \
	"(SELECT h.event_data FROM history h WHERE " PG_CURRENT_EXEC                                                   \
	" AND h.event_data ~ '\"type\": ?\"OrchestrationFailed\"' ORDER BY h.event_id DESC LIMIT 1)"

const char pg_failure_kind_sql[] =
        "(SELECT CASE"
        " WHEN fk.v='Application' THEN CASE WHEN fk.ev ~ '\"details\": ?\\{ ?\"Application\": ?\\{ ?\"kind\": ?\\{ "
        "?\"Cancelled\"'"
        " THEN 'cancelled' ELSE 'application' END"
        " WHEN fk.v='Poison' THEN 'poison' WHEN fk.v='Infrastructure' THEN 'infrastructure'"
        " WHEN fk.v='Configuration' THEN CASE WHEN fk.ev ~ '\"details\": ?\\{ ?\"Configuration\": ?\\{ ?\"kind\": "
        "?\"Nondeterminism\"'"
        " THEN 'nondeterminism' ELSE 'configuration' END"
        " WHEN e.output LIKE 'canceled: %' THEN 'cancelled' WHEN e.output LIKE 'poison: %' THEN 'poison'"
        " WHEN e.output LIKE 'nondeterministic%' THEN 'nondeterminism'"
        " WHEN e.output LIKE 'infrastructure:%' THEN 'infrastructure' ELSE 'application' END"
        " FROM (SELECT x.ev, substring(x.ev from '\"details\": ?\\{ ?\"(Application|Poison|Infrastructure|"
        "Configuration)\"') AS v FROM (SELECT " FAILED_EVENT " AS ev) x) fk)";

const char *pg_field_sql(pg_store *s, int field)
{
	switch (field) {
	case DUROX_FIELD_STATUS: return "COALESCE(e.status,'Unknown')";
	case DUROX_FIELD_ORCHESTRATION_NAME: return "i.orchestration_name";
	case DUROX_FIELD_VERSION: return "i.orchestration_version";
	case DUROX_FIELD_INSTANCE_ID: return "i.instance_id";
	case DUROX_FIELD_PARENT_INSTANCE:
		return s->base.info.has_parent_instance ? "i.parent_instance_id" : "NULL::text";
	case DUROX_FIELD_CREATED_AT: return "COALESCE(" PG_MS("i.created_at") ",0)";
	case DUROX_FIELD_UPDATED_AT:
		/* Duroxide's PostgreSQL runtime stamps instances.updated_at at every turn it
		 * acknowledges (its SQLite one never does, so the SQLite provider also looks at the
		 * last event): here the column, with the execution's times for rows it has not touched */
		return "GREATEST(COALESCE(" PG_MS("i.updated_at") ",0),COALESCE(" PG_MS(
		        "e.started_at") ",0),COALESCE(" PG_MS("e.completed_at") ",0))";
	case DUROX_FIELD_COMPLETED_AT: return PG_MS("e.completed_at");
	case DUROX_FIELD_CUSTOM_STATUS: return s->base.info.has_custom_status ? "i.custom_status" : "NULL::text";
	case DUROX_FIELD_EXECUTION_COUNT: return "i.current_execution_id";
	case DUROX_FIELD_FAILURE_KIND: return NULL; /* see field_sql */
	default: return NULL;
	}
}

/* pg_field_sql with the failure kind (a long expression kept in one place). */
static void add_field(pgsqlgen *g, int field)
{
	if (g->over_index) {
		const char *x = pgi_field_sql(field);
		buf_adds(&g->sql, x != NULL ? x : "NULL");
		return;
	}
	if (field == DUROX_FIELD_FAILURE_KIND) {
		buf_adds(&g->sql, "(CASE WHEN e.status='Failed' THEN ");
		buf_adds(&g->sql, pg_failure_kind_sql);
		buf_adds(&g->sql, " END)");
		return;
	}
	const char *f = pg_field_sql(g->s, field);
	buf_adds(&g->sql, f != NULL ? f : "NULL");
}

/* Text fields compare in byte order, as SQLite's BINARY collation does. */
static int is_text(int field) { return durox_field_type(field) == FT_TEXT; }

/* The input of the current execution (the input member of its OrchestrationStarted event). */
#define INPUT_SQL                                                                                                      \
	"(SELECT h.event_data::json->>'input' FROM history h WHERE " PG_CURRENT_EXEC                                   \
	" AND h.event_id=1 AND h.event_data ~ '\"type\": ?\"OrchestrationStarted\"')"

static void gen_expr(pgsqlgen *g, const durox_expr *e);

/* Whether a status IN list names Unknown. */
static int has_unknown(const durox_expr *e)
{
	for (size_t k = 0; k < e->nvals; k++)
		if (e->vals[k].type != DUROX_VAL_TEXT || strcmp(e->vals[k].text, "Unknown") == 0)
			return 1;
	return 0;
}

/* A LIKE pattern ending in a lone escape matches nothing (PostgreSQL would raise). */
static int lone_escape(const char *p)
{
	size_t n = strlen(p);
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\') {
			if (i + 1 == n)
				return 1;
			i++;
		}
	}
	return 0;
}

/* Appends "(strpos(lower(X),lower($n))>0)" for text column SQL col (ASCII case folding). */
static void add_contains(pgsqlgen *g, const char *col, int field, const durox_value *v)
{
	buf_adds(&g->sql, "COALESCE(strpos(lower((");
	if (col != NULL)
		buf_adds(&g->sql, col);
	else
		add_field(g, field);
	buf_adds(&g->sql, ") COLLATE \"C\"),lower(");
	pg_bind_push(g, v);
	buf_adds(&g->sql, "::text COLLATE \"C\")),0)>0");
}

/* |ms| below which time comparisons use the column (the years 1684 to 2255: four-digit years
 * in the bound's text, far inside timestamptz's range) */
#define TIME_BOUND_MS INT64_C(9000000000000)

/* Appends the bound 'epoch' + n ms: a parameter of type timestamptz (its text made here), so
 * a generic plan compares the column with a value, not with an expression per row. */
static void add_bound(pgsqlgen *g, int64_t n)
{
	if (g->p->n >= 4096) {
		g->overflow = 1;
		buf_adds(&g->sql, "NULL");
		return;
	}
	pqp_time_ms(g->p, n);
	buf_addf(&g->sql, "$%d::timestamptz", g->p->n);
}

/* created_at / completed_at <op> n for a time n, as the timestamptz column (Duroxide's type)
 * against bounds made once from n, rather than the ms expression (PG_MS) computed for every
 * row: cheaper, and an index on the column can serve it. The same truth: the field's ms are
 * floor(microseconds / 1000) (PG_MS), so ms >= n is col >= epoch + n ms, ms > n is
 * ms >= n + 1, ms < n is col < epoch + n ms, ms <= n is ms < n + 1, and ms = n is both
 * col >= epoch + n ms and col < epoch + (n + 1) ms. A NULL column: created_at counts as 0 (the
 * field is COALESCE(ms, 0)), so the truth of 0 <op> n; completed_at stays NULL (unknown), as
 * the ms expression is. Returns 0 (nothing appended) for the other fields, ops and values. */
static int gen_time_cmp(pgsqlgen *g, const durox_expr *e)
{
	if (g->over_index || (e->field != DUROX_FIELD_CREATED_AT && e->field != DUROX_FIELD_COMPLETED_AT) ||
	    e->vals[0].type != DUROX_VAL_INT || e->vals[0].i <= -TIME_BOUND_MS || e->vals[0].i >= TIME_BOUND_MS)
		return 0;
	int64_t n = e->vals[0].i;
	const char *col = e->field == DUROX_FIELD_CREATED_AT ? "i.created_at" : "e.completed_at";
	int null_is;
	switch (e->op) {
	case DUROX_OP_GE: null_is = 0 >= n; break;
	case DUROX_OP_GT: null_is = 0 > n; break;
	case DUROX_OP_LT: null_is = 0 < n; break;
	case DUROX_OP_LE: null_is = 0 <= n; break;
	case DUROX_OP_EQ: null_is = n == 0; break;
	default: return 0;
	}
	int coalesce = e->field == DUROX_FIELD_CREATED_AT;
	buf_adds(&g->sql, coalesce ? "COALESCE(" : "(");
	if (e->op == DUROX_OP_EQ) {
		buf_addf(&g->sql, "%s>=", col);
		add_bound(g, n);
		buf_addf(&g->sql, " AND %s<", col);
		add_bound(g, n + 1);
	} else {
		int lower = e->op == DUROX_OP_GE || e->op == DUROX_OP_GT;
		buf_addf(&g->sql, "%s%s", col, lower ? ">=" : "<");
		add_bound(g, e->op == DUROX_OP_GT || e->op == DUROX_OP_LE ? n + 1 : n);
	}
	if (coalesce)
		buf_adds(&g->sql, null_is ? ",TRUE)" : ",FALSE)");
	else
		buf_addc(&g->sql, ')');
	return 1;
}

static void gen_cmp(pgsqlgen *g, const durox_expr *e)
{
	if (e->field == DUROX_FIELD_TEXT) {
		const char *cols[] = {"i.instance_id", "i.orchestration_name",
		                      pg_field_sql(g->s, DUROX_FIELD_CUSTOM_STATUS), INPUT_SQL, "e.output"};
		buf_adds(&g->sql, e->op == DUROX_OP_NE ? "NOT (" : "(");
		for (size_t k = 0; k < 5; k++) {
			if (k > 0)
				buf_adds(&g->sql, " OR ");
			add_contains(g, cols[k], 0, &e->vals[0]);
		}
		buf_addc(&g->sql, ')');
		return;
	}
	const char *coll = is_text(e->field) && !g->s->byte_order ? " COLLATE \"C\"" : "";
	switch (e->op) {
	case DUROX_OP_IS_NULL:
		buf_addc(&g->sql, '(');
		add_field(g, e->field);
		buf_adds(&g->sql, " IS NULL)");
		return;
	case DUROX_OP_NOT_NULL:
		buf_addc(&g->sql, '(');
		add_field(g, e->field);
		buf_adds(&g->sql, " IS NOT NULL)");
		return;
	case DUROX_OP_PREFIX:
		/* starts_with rather than the SQLite provider's range up to prefix||0xFF: that byte is
		 * not valid UTF-8, which PostgreSQL refuses */
		buf_adds(&g->sql, "starts_with(");
		add_field(g, e->field);
		buf_addc(&g->sql, ',');
		pg_bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, "::text)");
		return;
	case DUROX_OP_LIKE:
		if (e->vals[0].type == DUROX_VAL_TEXT && lone_escape(e->vals[0].text)) {
			buf_adds(&g->sql, "FALSE");
			return;
		}
		buf_adds(&g->sql, "(lower((");
		add_field(g, e->field);
		buf_adds(&g->sql, ") COLLATE \"C\") LIKE lower(");
		pg_bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, "::text COLLATE \"C\") ESCAPE '\\')");
		return;
	case DUROX_OP_CONTAINS:
		buf_addc(&g->sql, '(');
		add_contains(g, NULL, e->field, &e->vals[0]);
		buf_addc(&g->sql, ')');
		return;
	case DUROX_OP_NE:
		buf_addc(&g->sql, '(');
		add_field(g, e->field);
		buf_adds(&g->sql, " IS DISTINCT FROM ");
		pg_bind_push(g, &e->vals[0]);
		buf_addc(&g->sql, ')');
		return;
	default: {
		if (gen_time_cmp(g, e))
			return;
		static const char *const ops[] = {[DUROX_OP_EQ] = "=",
		                                  [DUROX_OP_LT] = "<",
		                                  [DUROX_OP_LE] = "<=",
		                                  [DUROX_OP_GT] = ">",
		                                  [DUROX_OP_GE] = ">="};
		int eq = e->op == DUROX_OP_EQ;
		buf_addc(&g->sql, '(');
		/* a status other than Unknown compares with the column itself, not COALESCE(...): the
		 * same truth (a missing row is never that status; NOT is "IS NOT TRUE"), and the
		 * planner then estimates the rows it selects */
		if (eq && e->field == DUROX_FIELD_STATUS && e->vals[0].type == DUROX_VAL_TEXT &&
		    strcmp(e->vals[0].text, "Unknown") != 0)
			buf_adds(&g->sql, g->over_index ? "x.status" : "e.status");
		else
			add_field(g, e->field);
		buf_addf(&g->sql, "%s %s ", eq ? "" : coll, ops[e->op]);
		pg_bind_push(g, &e->vals[0]);
		if (!eq && *coll)
			buf_adds(&g->sql, "::text");
		buf_addc(&g->sql, ')');
	}
	}
}

static void gen_chain(pgsqlgen *g, const durox_expr *e)
{
	if (e->a->kind == e->kind)
		gen_chain(g, e->a);
	else
		gen_expr(g, e->a);
	buf_adds(&g->sql, e->kind == EXPR_AND ? " AND " : " OR ");
	gen_expr(g, e->b);
}

static void gen_expr(pgsqlgen *g, const durox_expr *e)
{
	switch (e->kind) {
	case EXPR_AND:
	case EXPR_OR:
		buf_addc(&g->sql, '(');
		gen_chain(g, e);
		buf_addc(&g->sql, ')');
		return;
	case EXPR_NOT:
		/* NOT of an unknown (NULL) comparison is true, as on SQLite */
		buf_addc(&g->sql, '(');
		gen_expr(g, e->a);
		buf_adds(&g->sql, " IS NOT TRUE)");
		return;
	case EXPR_CMP: gen_cmp(g, e); return;
	case EXPR_IN:
		buf_addc(&g->sql, '(');
		if (e->field == DUROX_FIELD_STATUS && !has_unknown(e))
			buf_adds(&g->sql, g->over_index ? "x.status" : "e.status"); /* see gen_cmp */
		else
			add_field(g, e->field);
		buf_adds(&g->sql, " IN (");
		for (size_t k = 0; k < e->nvals; k++) {
			if (k > 0)
				buf_addc(&g->sql, ',');
			pg_bind_push(g, &e->vals[k]);
		}
		buf_adds(&g->sql, "))");
		return;
	case EXPR_IDSET:
		/* any number of ids in one parameter: a JSON array */
		buf_adds(&g->sql, g->over_index ? "(x.instance_id IN (SELECT jsonb_array_elements_text("
		                                : "(i.instance_id IN (SELECT jsonb_array_elements_text(");
		pg_bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, "::jsonb)))");
		return;
	case EXPR_BETWEEN: {
		const char *coll = is_text(e->field) && !g->s->byte_order ? " COLLATE \"C\"" : "";
		buf_addc(&g->sql, '(');
		add_field(g, e->field);
		buf_addf(&g->sql, "%s BETWEEN ", coll);
		pg_bind_push(g, &e->vals[0]);
		buf_adds(&g->sql, " AND ");
		pg_bind_push(g, &e->vals[1]);
		buf_addc(&g->sql, ')');
		return;
	}
	}
}

/* Nonzero when e can only match instances whose current execution row exists (as in
 * sqlite_filter.c): such filters use an inner join. */
static int needs_execution(const durox_expr *e)
{
	if (e == NULL)
		return 0;
	switch (e->kind) {
	case EXPR_AND: return needs_execution(e->a) || needs_execution(e->b);
	case EXPR_OR: return needs_execution(e->a) && needs_execution(e->b);
	case EXPR_NOT: return 0;
	case EXPR_CMP:
		if (e->field == DUROX_FIELD_STATUS && e->op == DUROX_OP_EQ)
			return strcmp(e->vals[0].text, "Unknown") != 0;
		if (e->field == DUROX_FIELD_FAILURE_KIND || e->field == DUROX_FIELD_COMPLETED_AT)
			return e->op != DUROX_OP_IS_NULL && e->op != DUROX_OP_NE;
		return 0;
	case EXPR_IN:
		if (e->field == DUROX_FIELD_FAILURE_KIND || e->field == DUROX_FIELD_COMPLETED_AT)
			return 1;
		if (e->field != DUROX_FIELD_STATUS)
			return 0;
		for (size_t k = 0; k < e->nvals; k++)
			if (strcmp(e->vals[k].text, "Unknown") == 0)
				return 0;
		return 1;
	case EXPR_BETWEEN: return e->field == DUROX_FIELD_COMPLETED_AT;
	case EXPR_IDSET: return 0;
	}
	return 0;
}

const char *pg_from_current(const durox_filter *f)
{
	return f != NULL && needs_execution(f->root)
	               ? " FROM instances i JOIN executions e ON e.instance_id=i.instance_id AND "
	                 "e.execution_id=i.current_execution_id"
	               : " FROM instances i LEFT JOIN executions e ON e.instance_id=i.instance_id AND "
	                 "e.execution_id=i.current_execution_id";
}

void pg_gen_where(pgsqlgen *g, const durox_filter *f)
{
	if (f == NULL || f->root == NULL)
		buf_adds(&g->sql, "TRUE");
	else
		gen_expr(g, f->root);
}
