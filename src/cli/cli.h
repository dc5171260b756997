/*
 * cli.h - what the files of duroxlua (src/cli) share: the durox.term module (term.c) that
 * main.c preloads for the REPL and live commands. Private to src/cli.
 */
#ifndef DUROX_CLI_CLI_H
#define DUROX_CLI_CLI_H

#include <lua.h>

/* Opens durox.term (pushes the module table); a lua_CFunction for package.preload. */
int cli_open_term(lua_State *L);

#endif
