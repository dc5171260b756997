/*
 * module.c - entry point of the loadable Lua module: `require "durox"` from a stock
 * lua5.4 finds durox.so on package.cpath and calls luaopen_durox. duroxlua calls
 * durox_luaopen directly instead.
 */
#include "lua/lx.h"

LUALIB_API int luaopen_durox(lua_State *L);

LUALIB_API int luaopen_durox(lua_State *L) { return durox_luaopen(L); }
