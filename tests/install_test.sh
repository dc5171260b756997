#!/usr/bin/env bash
# install_test.sh BUILD_DIR STORE_DB - installs the build into a temporary prefix and checks
# what users get:
#   - stock lua5.4 requires the installed durox.so module (with its embedded Lua parts), which
#     exports luaopen_durox and nothing else;
#   - the installed duroxlua runs and reports the header's version;
#   - a C program builds with `pkg-config --cflags --libs durox` alone (the shared libdurox,
#     which exports only durox_* functions) and from libdurox.a with the .pc's private
#     requirements, and lists the store;
#   - a CMake project finds the package (find_package(duroxlua)) and links duroxlua::durox
#     and duroxlua::durox_static;
#   - the man page renders with man(1), and the bash and zsh completions are installed;
#   - the LICENSE is installed.
set -euo pipefail
build=${1:?} db=${2:?}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
fail() { echo "install: $*" >&2; exit 1; }
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(cd "$prefix" && ls -d lib*/ | head -1)
libdir=${prefix}/${libdir%/}
[ -f "$libdir/pkgconfig/durox.pc" ] || libdir=$(dirname "$(find "$prefix" -name durox.pc | head -1)")/..
test -x "$prefix/bin/duroxlua" || fail "no bin/duroxlua"
test -f "$prefix/include/durox.h" || fail "no include/durox.h"
module=$(find "$prefix" -name durox.so -path '*lua/5.4*' | head -1)
[ -n "$module" ] || fail "no lua/5.4/durox.so"

# stock lua5.4 loads the installed module; it exports luaopen_durox only
out=$(DB="$db" LUA_CPATH="$(dirname "$module")/?.so" lua5.4 -e '
  local durox = require "durox"
  local dx = assert(durox.open("sqlite:" .. os.getenv("DB"), { readonly = true }))
  io.write(#assert(dx:list_instances({ status = "Failed" })), " ", require("durox.format").iso(0))')
[ "$out" = "8 1970-01-01T00:00:00Z" ] || fail "lua5.4 with the installed module printed: $out"
exported=$(nm -D --defined-only "$module" | awk '{print $3}' | tr '\n' ' ')
[ "$exported" = "luaopen_durox " ] || fail "durox.so exports more than luaopen_durox: $exported"

version=$(sed -n 's/^#define DUROX_VERSION "\(.*\)"/\1/p' "$prefix/include/durox.h")
[ "$("$prefix/bin/duroxlua" -e 'io.write(durox.version)')" = "$version" ] || fail "duroxlua's version differs"

cat > "$prefix/t.c" <<'C'
#include <durox.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
	(void)argc;
	char err[256], url[1024];
	durox *dx;
	if (strcmp(durox_version(), DUROX_VERSION) != 0 || durox_version_number() != DUROX_VERSION_NUMBER)
		return 2;
	snprintf(url, sizeof url, "sqlite:%s", argv[1]);
	if (durox_open(url, NULL, &dx, err, sizeof err) != DUROX_OK) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	durox_instance_list *l;
	if (durox_list_instances(dx, NULL, NULL, NULL, &l) != DUROX_OK)
		return 1;
	printf("%zu\n", l->count);
	durox_instance_list_free(l);
	durox_close(dx);
	return 0;
}
C
expected=$(sqlite3 "$db" 'SELECT count(*) FROM instances')
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists durox || fail "pkg-config does not find durox"
[ "$(pkg-config --modversion durox)" = "$version" ] || fail "durox.pc has another version"
# the shared library: pkg-config --libs alone
cc -std=c11 -Wall -Werror "$prefix/t.c" $(pkg-config --cflags --libs durox) -o "$prefix/t-shared"
[ "$(LD_LIBRARY_PATH="$libdir" "$prefix/t-shared" "$db")" = "$expected" ] || fail "the pkg-config program (shared) failed"
grep -q 'libdurox\.so' <<<"$(ldd "$prefix/t-shared")" || fail "the shared program is not linked to libdurox.so"
leaked=$(nm -D --defined-only "$libdir/libdurox.so" | awk '$2 == "T" {print $3}' | grep -v '^durox_' || true)
[ -z "$leaked" ] || fail "libdurox.so exports internal functions: $leaked"
# the static library with its private requirements (Requires.private, Libs.private), those
# linked dynamically (Debian's libpq.pc lists static-only libraries under --static)
grep -q '^sqlite3' <<<"$(pkg-config --print-requires-private durox)" || fail "durox.pc does not require sqlite3 privately"
cc -std=c11 -Wall -Werror "$prefix/t.c" $(pkg-config --cflags durox) "$libdir/libdurox.a" \
  $(pkg-config --libs $(pkg-config --print-requires-private durox | awk '{print $1}')) -lm -o "$prefix/t-static"
grep -q 'libdurox\.so' <<<"$(ldd "$prefix/t-static")" && fail "the static program is linked to libdurox.so"
[ "$("$prefix/t-static" "$db")" = "$expected" ] || fail "the pkg-config program (static) failed"

# the CMake package
mkdir -p "$prefix/consumer"
cat > "$prefix/consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(duroxlua 0.1 REQUIRED)
add_executable(t-cmake ../t.c)
target_link_libraries(t-cmake PRIVATE duroxlua::durox)
add_executable(t-cmake-static ../t.c)
target_link_libraries(t-cmake-static PRIVATE duroxlua::durox_static)
CM
cmake -S "$prefix/consumer" -B "$prefix/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer/build" >/dev/null
[ "$("$prefix/consumer/build/t-cmake" "$db")" = "$expected" ] || fail "the CMake program (duroxlua::durox) failed"
[ "$("$prefix/consumer/build/t-cmake-static" "$db")" = "$expected" ] || fail "the CMake program (static) failed"

# the man page, the completions, the licence
page=$(find "$prefix" -path '*man1/duroxlua.1' | head -1)
[ -n "$page" ] || fail "no man1/duroxlua.1"
text=$(MANWIDTH=100 man -l "$page" 2>/dev/null | col -b)
grep -q '^NAME' <<<"$text" || fail "the man page does not render"
grep -q 'EXIT STATUS' <<<"$text" || fail "the man page has no EXIT STATUS"
[ -f "$prefix/share/bash-completion/completions/duroxlua" ] || fail "no bash completion"
[ -f "$prefix/share/zsh/site-functions/_duroxlua" ] || fail "no zsh completion"
[ -n "$(find "$prefix" -name LICENSE)" ] || fail "no LICENSE"
# the version is written once (durox.h): CMake, the .pc and the rockspec agree
src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$src/duroxlua-$version-1.rockspec" ] || fail "no duroxlua-$version-1.rockspec"
grep -q "^version = \"$version-1\"" "$src/duroxlua-$version-1.rockspec" || fail "the rockspec has another version"

# under add_subdirectory: PROJECT_SOURCE_DIR paths, no warnings or tests imposed on the parent
mkdir -p "$prefix/parent"
cat > "$prefix/parent/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(parent C)
add_subdirectory("$src" duroxlua)
add_executable(t-sub ../t.c)
target_link_libraries(t-sub PRIVATE durox_core)
CM
cmake -S "$prefix/parent" -B "$prefix/parent/build" -DDUROX_BUILD_CLI=OFF >/dev/null ||
  fail "a parent project cannot add_subdirectory(duroxlua)"
grep -q 'DUROX_WERROR:BOOL=OFF' "$prefix/parent/build/CMakeCache.txt" || fail "-Werror imposed on a parent project"
grep -q 'DUROX_TESTS:BOOL=OFF' "$prefix/parent/build/CMakeCache.txt" || fail "tests imposed on a parent project"
echo "install: ok"
