#!/usr/bin/env bash
# rockspec_test.sh - LuaRocks builds the module from duroxlua-<version>-1.rockspec with the
# system's libraries into a temporary tree, and stock lua5.4 requires it from there.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^#define DUROX_VERSION "\(.*\)"/\1/p' include/durox.h)
tree=$(mktemp -d)
trap 'rm -rf "$tree" build.luarocks' EXIT
luarocks --lua-version=5.4 make --tree="$tree" "duroxlua-$version-1.rockspec" >"$tree/log" 2>&1 ||
  { cat "$tree/log" >&2; echo "rockspec: luarocks make failed" >&2; exit 1; }
out=$(LUA_CPATH="$tree/lib/lua/5.4/?.so" lua5.4 -e '
  local durox = require "durox"
  local dx = assert(durox.open("sqlite::memory:"))
  io.write(durox.version, " ", #assert(dx:list_instances()), " ", require("durox.format").iso(0))')
[ "$out" = "$version 0 1970-01-01T00:00:00Z" ] || { echo "rockspec: the rock's module printed: $out" >&2; exit 1; }
echo "rockspec: ok"
