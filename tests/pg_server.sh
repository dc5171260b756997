#!/usr/bin/env bash
# pg_server.sh start|stop|url|status DIR [tcp] - a throwaway PostgreSQL 15 server for the tests.
#
#   start DIR   initdb in DIR/data (once) and start the server with its unix socket in DIR:
#               fsync off, no TCP (listen_addresses=''), logging to DIR/server.log. As root the
#               server runs as the unprivileged `postgres` OS user (postgres refuses root), so DIR
#               must be under /tmp or another directory that user can enter. Prints the URL.
#               With `tcp`, the server also listens on 127.0.0.1 at the same port.
#   stop DIR    fast shutdown, waits for the server to exit; does nothing when none runs.
#   url DIR     prints the superuser URL: postgresql://postgres@/postgres?host=DIR&port=PORT
#   status DIR  exit 0 when the server of DIR runs.
#   standby DIR PRIMARY_DIR
#               a hot standby of the server of PRIMARY_DIR (pg_basebackup -R, streaming
#               replication over its unix socket), started like `start`; prints its URL.
#
# Several runs on one machine never collide: every server has its own socket directory, and
# its port (which names the socket file, and the TCP port with `tcp`) is picked at start among
# the ports no other server uses, then kept in DIR/port.
set -euo pipefail
cmd=${1:?usage: pg_server.sh start|stop|url|status DIR [tcp]}
dir=${2:?usage: pg_server.sh start|stop|url|status DIR [tcp]}
mode=${3:-}
bin=${DUROX_PG_BIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() {
  echo "postgresql://postgres@/postgres?host=$dir&port=$(cat "$dir/port")"
}

running() {
  [ -f "$dir/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# A free port: not taken by a TCP listener on this machine nor by a socket file in /tmp.
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! ls /tmp/*/.s.PGSQL."$p" >/dev/null 2>&1; then
      echo "$p"
      return 0
    fi
  done
  echo "pg_server: no free port found" >&2
  return 1
}

case "$cmd" in
standby)
  primary=${3:?usage: pg_server.sh standby DIR PRIMARY_DIR}
  mode=
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/pg_basebackup" -D "$dir/data" -R -X stream -d "host=$primary port=$(cat "$primary/port") user=postgres" \
      >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; exit 1; }
  fi
  exec "$0" start "$dir"
  ;;
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir"
  fi
  if running; then
    url
    exit 0
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
  fi
  # local connections are trusted; TCP (127.0.0.1, with `tcp`) asks for a password, so that
  # the tests can check wrong passwords, PGPASSWORD and ~/.pgpass
  if [ ! -f "$dir/data/.durox_hba" ]; then
    printf '%s\n' 'local all all trust' 'local replication all trust' \
      'host all all 127.0.0.1/32 scram-sha-256' 'host replication all 127.0.0.1/32 scram-sha-256' \
      >"$dir/data/pg_hba.conf"
    touch "$dir/data/.durox_hba"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir/data/pg_hba.conf" "$dir/data/.durox_hba"
  fi
  [ -s "$dir/port" ] || pick_port >"$dir/port"
  port=$(cat "$dir/port")
  listen="''"
  [ "$mode" = tcp ] && listen=127.0.0.1
  if ! as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "-k $dir -p $port -c listen_addresses=$listen \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 \
      -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on" start >"$dir/pg_ctl.log" 2>&1; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 || true
    exit 1
  fi
  url
  ;;
stop)
  [ -d "$dir/data" ] || exit 0
  if running; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
  fi
  ;;
url) url ;;
status) running ;;
*)
  echo "usage: pg_server.sh start|stop|url|status DIR [tcp]" >&2
  exit 2
  ;;
esac
