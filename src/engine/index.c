/*
 * index.c - the visibility index's own operations: durox_index_get_status, _build, _drop,
 * _verify and the progress callback of builds that a read starts. The index itself lives in
 * the provider (store/provider_index.h), which routes its reads through it; the engine only
 * passes these requests on, through access control: under a policy the index's status and
 * verification describe the whole store (its instance and history counts, the id of a
 * mismatched instance), so they need a caller who sees everything and may view metrics
 * (access_store_wide); building, syncing, dropping and verifying it are operational work on
 * duroxlua's own state, as jobs and stream state are, and need can_manage_jobs. Used by the
 * Lua binding and the CLI (duroxlua index ...).
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "engine/access.h"
#include "engine/internal.h"
#include "store/provider_index.h"

static int no_index(durox *dx)
{
	return dx_fail(dx, DUROX_EUNSUPPORTED, "the %s provider keeps no visibility index", dx->st->info.provider);
}

int durox_index_get_status(durox *dx, durox_index_status *out)
{
	dx_clear(dx);
	memset(out, 0, sizeof *out);
	out->state = "off";
	out->reason = "";
	out->size_bytes = -1;
	out->built_at = out->synced_at = DUROX_NO_TIME;
	int arc = access_store_wide(dx, "index_status");
	if (arc != DUROX_OK)
		return arc;
	if (dx->st->ivt == NULL) {
		out->reason = "the provider keeps no visibility index";
		return DUROX_OK;
	}
	int rc = dx->st->ivt->status(dx->st, out);
	return rc == DUROX_OK ? DUROX_OK : dx_store_fail(dx, rc);
}

/* durox_index_progress_fn and store_progress_fn are the same type: callbacks pass through. */

int durox_index_build(durox *dx, int rebuild, durox_index_progress_fn progress, void *ud)
{
	dx_clear(dx);
	int arc = access_global(dx, "index_build", DUROX_HOOK_MANAGE_JOBS);
	if (arc != DUROX_OK)
		return arc;
	if (dx->st->ivt == NULL)
		return no_index(dx);
	int rc = dx->st->ivt->build(dx->st, rebuild, progress, ud);
	return rc == DUROX_OK ? DUROX_OK : dx_store_fail(dx, rc);
}

int durox_index_sync(durox *dx)
{
	dx_clear(dx);
	int arc = access_global(dx, "index_sync", DUROX_HOOK_MANAGE_JOBS);
	if (arc != DUROX_OK)
		return arc;
	if (dx->st->ivt == NULL)
		return no_index(dx);
	int rc = dx->st->ivt->sync(dx->st);
	return rc == DUROX_OK ? DUROX_OK : dx_store_fail(dx, rc);
}

int durox_index_drop(durox *dx)
{
	dx_clear(dx);
	int arc = access_global(dx, "index_drop", DUROX_HOOK_MANAGE_JOBS);
	if (arc != DUROX_OK)
		return arc;
	if (dx->st->ivt == NULL)
		return no_index(dx);
	int rc = dx->st->ivt->drop(dx->st);
	return rc == DUROX_OK ? DUROX_OK : dx_store_fail(dx, rc);
}

int durox_index_verify(durox *dx, durox_index_verify_result *out)
{
	dx_clear(dx);
	memset(out, 0, sizeof *out);
	int arc = access_global(dx, "index_verify", DUROX_HOOK_MANAGE_JOBS);
	if (arc == DUROX_OK)
		arc = access_store_wide(dx, "index_verify");
	if (arc != DUROX_OK)
		return arc;
	if (dx->st->ivt == NULL)
		return no_index(dx);
	int rc = dx->st->ivt->verify(dx->st, out);
	return rc == DUROX_OK ? DUROX_OK : dx_store_fail(dx, rc);
}

void durox_index_set_progress(durox *dx, durox_index_progress_fn progress, void *ud)
{
	if (dx->st->ivt != NULL)
		dx->st->ivt->set_progress(dx->st, progress, ud);
}
