/*
 * binding_query.c - durox.parse_query(text): checks a query string and returns the canonical
 * text of the filter it denotes (durox_filter_describe), for tooling and tests. Query strings
 * themselves are accepted wherever a filter is (convert.c's lx_check_filter). Relies on the
 * engine's durox_filter_parse; added to the module table by durox_luaopen (binding.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "lua/lx.h"

static void filter_free_box(void *p) { durox_filter_free(p); }

/* durox.parse_query(text) -> canonical text | nil, message, "INVALID" (or "NOMEM") */
static int l_parse_query(lua_State *L)
{
	const char *text = lx_checktext(L, 1);
	lx_box *b = lx_newbox(L); /* owns the filter from the moment it exists */
	char err[512];
	durox_filter *f;
	int rc = durox_filter_parse(text, &f, err, sizeof err);
	if (rc != DUROX_OK) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		lua_pushstring(L, durox_code_name(rc));
		return 3;
	}
	b->p = f;
	b->fr = filter_free_box;
	lua_pushstring(L, durox_filter_describe(f));
	lx_boxfree(b);
	return 1;
}

void lx_open_query(lua_State *L)
{
	lua_pushcfunction(L, l_parse_query);
	lua_setfield(L, -2, "parse_query");
}
