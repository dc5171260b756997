/* header_check.c - durox.h compiles alone, strictly (-pedantic, the project's warnings), and
 * its _INIT macros are valid initializers. */
#include "durox.h"
int durox_header_check_unused(void);
int durox_header_check_unused(void)
{
	durox_config c = DUROX_CONFIG_INIT;
	durox_time_series_request t = DUROX_TIME_SERIES_REQUEST_INIT;
	durox_prune_request p = DUROX_PRUNE_REQUEST_INIT;
	durox_bulk_wait_request w = DUROX_BULK_WAIT_REQUEST_INIT;
	return DUROX_OK + (int)c.max_attempts + (t.from == DUROX_NO_TIME) + (p.completed_before == DUROX_NO_TIME) +
	       (int)w.timeout_ms + (DUROX_VERSION_NUMBER > 0);
}
