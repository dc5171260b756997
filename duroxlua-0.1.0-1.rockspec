-- duroxlua-0.1.0-1.rockspec - the Lua module `durox` built by LuaRocks with the system's
-- libraries (SQLite 3.38+, libpq 14+, Lua 5.4 headers): the CMake build with only the
-- libraries and the module (no duroxlua, no tests), durox.so installed in the rocks tree.
-- From a checkout: luarocks --lua-version=5.4 make duroxlua-0.1.0-1.rockspec
rockspec_format = "3.0"
package = "duroxlua"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/duroxlua/duroxlua.git",
  tag = "v0.1.0",
}
description = {
  summary = "Management and visibility for Duroxide orchestration stores, as the Lua module durox",
  detailed = [[
    List, inspect, cancel, raise, purge and restart the orchestrations of Duroxide stores
    (SQLite and PostgreSQL), with metrics, analytics and resumable bulk jobs, from Lua 5.4.
  ]],
  license = "MIT",
}
dependencies = { "lua == 5.4" }
external_dependencies = {
  SQLITE3 = { header = "sqlite3.h", library = "sqlite3" },
  PQ = { header = "postgresql/libpq-fe.h", library = "pq" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    DUROX_BUILD_CLI = "OFF",
    DUROX_INSTALL_LIBRARIES = "OFF",
    DUROX_TESTS = "OFF",
    DUROX_WERROR = "OFF",
    DUROX_LUA_CMODDIR = "$(LIBDIR)",
  },
}
