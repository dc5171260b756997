#!/usr/bin/env bash
# install_test.sh BUILD_DIR STORE_DB - installs the build into a temporary prefix and checks
# what users get: stock lua5.4 requires the installed durox.so (with its embedded Lua parts),
# the installed duroxlua runs, and a C program builds against the installed header and
# static library and lists the store.
set -euo pipefail
build=${1:?} db=${2:?}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/duroxlua"
test -f "$prefix/include/durox.h"
out=$(DB="$db" LUA_CPATH="$prefix/lib/lua/5.4/?.so" lua5.4 -e '
  local durox = require "durox"
  local dx = assert(durox.open("sqlite:" .. os.getenv("DB"), { readonly = true }))
  io.write(#assert(dx:list_instances({ status = "Failed" })), " ", require("durox.format").iso(0))')
[ "$out" = "8 1970-01-01T00:00:00Z" ] || { echo "lua5.4 with the installed module printed: $out" >&2; exit 1; }
[ "$("$prefix/bin/duroxlua" -e 'io.write(durox.version)')" = "$(sed -n 's/#define DUROX_VERSION "\(.*\)"/\1/p' "$prefix/include/durox.h")" ]
cat > "$prefix/t.c" <<'C'
#include <durox.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	(void)argc;
	char err[256], url[1024];
	durox *dx;
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
cc -std=c11 -Wall -Werror -I"$prefix/include" "$prefix/t.c" "$prefix/lib/libdurox_core.a" -lsqlite3 -lpq -lm -o "$prefix/t"
[ "$("$prefix/t" "$db")" = "$(sqlite3 "$db" 'SELECT count(*) FROM instances')" ]
echo "install: ok"
