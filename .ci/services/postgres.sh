#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the registry tests: 127.0.0.1 only, a free port, a temp dir.
#
#   eval "$(bash .ci/services/postgres.sh start)"   # prints export lines
#   bash .ci/services/postgres.sh stop "$PROVISION_TEST_PG_DIR"
#
# Idempotent: `start` with PROVISION_TEST_PG_DIR pointing at a running cluster prints its
# variables again. Installing PostgreSQL is not this script's job (Debian: postgresql).
# PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail

# As root the cluster belongs to `postgres`, who must reach the directory: a TMPDIR under
# /root would not do.
if [ "$(id -u)" = 0 ]; then BASE=/tmp; else BASE=${TMPDIR:-/tmp}; fi

find_bin() {
    local name=$1 dir
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
    done
    return 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

print_env() {
    local dir=$1 port
    port=$(cat "$dir/port")
    echo "export PROVISION_TEST_PG_DIR=$dir"
    echo "export PROVISION_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/provision_test"
}

start() {
    local dir=${PROVISION_TEST_PG_DIR:-}
    if [ -n "$dir" ] && [ -f "$dir/data/postmaster.pid" ] && [ -f "$dir/port" ]; then
        print_env "$dir"
        return 0
    fi
    local initdb pg_ctl
    initdb=$(find_bin initdb) || { echo "postgres.sh: initdb not found (apt-get install postgresql)" >&2; exit 3; }
    pg_ctl=$(find_bin pg_ctl) || { echo "postgres.sh: pg_ctl not found" >&2; exit 3; }
    dir=$(mktemp -d "$BASE/provision-pg.XXXXXX")
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || { echo "postgres.sh: no postgres user to run as" >&2; exit 3; }
        chown postgres: "$dir"
    fi
    as_owner "$initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-sync \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 3; }
    local port tries=0
    while :; do
        port=$(free_port)
        # fsync off: a test cluster that dies loses nothing anyone needs, and it is 10x faster.
        # PROVISION_PG_DURABLE=1 keeps PostgreSQL's defaults (a bench timing durable commits).
        local sync="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        if [ "${PROVISION_PG_DURABLE:-0}" = 1 ]; then sync=""; fi
        if as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
            "-c listen_addresses=127.0.0.1 -p $port -k $dir $sync" \
            >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 3 ]; then cat "$dir/server.log" >&2; exit 3; fi
    done
    echo "$port" | as_owner tee "$dir/port" >/dev/null
    as_owner "$(dirname "$pg_ctl")/createdb" -h 127.0.0.1 -p "$port" -U postgres provision_test \
        2>/dev/null || as_owner psql -h 127.0.0.1 -p "$port" -U postgres -c 'CREATE DATABASE provision_test' >/dev/null
    print_env "$dir"
}

stop() {
    local dir=${1:-${PROVISION_TEST_PG_DIR:-}}
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    case "$dir" in
        "$BASE"/provision-pg.*) ;;
        *) echo "postgres.sh: refusing to remove $dir (not a cluster this script made)" >&2; exit 2 ;;
    esac
    local pg_ctl
    if pg_ctl=$(find_bin pg_ctl) && [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "${1:-start}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
