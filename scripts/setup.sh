#!/usr/bin/env bash
# setup.sh - installs everything duroxlua needs to build, test and run its demo, from
# Debian's packages and (for the real Duroxide runtime used by tests) the npm registry.
# Idempotent: packages already present are not reinstalled, npm ci only when needed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(build-essential cmake pkg-config lua5.4 liblua5.4-dev lua-cjson lua-busted
          libsqlite3-dev sqlite3 libpq-dev postgresql postgresql-client libcurl4-openssl-dev libedit-dev tmux zsh
          luarocks clang-14 libclang-rt-14-dev clang-format nodejs npm prometheus openssl curl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# node/npm may come from outside Debian on some machines: only install them when absent
if command -v node >/dev/null 2>&1; then
  missing=("${missing[@]/nodejs}")
fi
if command -v npm >/dev/null 2>&1; then
  missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# The real runtime (pinned in tests/harness/package.json / package-lock.json).
if [ ! -f tests/harness/node_modules/duroxide-linux-x64-gnu/package.json ] ||
   ! grep -q '"version": "0.1.29"' tests/harness/node_modules/duroxide-linux-x64-gnu/package.json; then
  echo "setup: installing the Duroxide runtime (npm duroxide-linux-x64-gnu@0.1.29)"
  (cd tests/harness && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok"
