#!/usr/bin/env bash
# A private, throwaway PostgreSQL 15 cluster for the tests, reachable only through a Unix socket.
#
#   scripts/pg-rig.sh start     # prints: export COOLIFY_MIGRATE_TEST_PG=...  (eval it)
#   scripts/pg-rig.sh stop      # stops the cluster `start` recorded and removes its directory
#   scripts/pg-rig.sh status    # does COOLIFY_MIGRATE_TEST_PG (or the recorded cluster) answer?
#
# Sourced (as scripts/test.sh does) it only defines the pg_rig_* functions: pg_rig_start then
# exports COOLIFY_MIGRATE_TEST_PG into the caller, whose EXIT trap calls pg_rig_stop;
# pg_rig_answers CONNINFO says whether a server answers a query there.
#
# The cluster: `initdb` of the host's PostgreSQL 15 (`pg_config --bindir`, else
# /usr/lib/postgresql/15/bin; Debian: apt-get install postgresql-15) in a temp dir
# /tmp/cm-pg.XXXXXX holding the data (data/), the server log (postgres.log) and the socket
# (.s.PGSQL.5432). listen_addresses is empty, so it opens no TCP port at all; local (socket)
# logins are trusted, TCP logins would be rejected. Superuser `postgres`, locale C, UTF8;
# fsync off (the data are thrown away). PostgreSQL refuses to run as root: run as root, the
# cluster belongs to the system user `postgres` (Debian's package creates it; created here
# otherwise, or set PG_RIG_USER), and the temp dir is made its own, mode 0700.
#
# COOLIFY_MIGRATE_TEST_PG is a libpq URI for that superuser on that socket, exactly:
#
#   postgresql:///postgres?host=/tmp/cm-pg.XXXXXX&user=postgres
#
# (database postgres, port 5432, no password). `stop` runs `pg_ctl stop -m fast` after checking
# that the recorded pid is still this cluster's postmaster, so it never touches another server.

set -euo pipefail

PG_RIG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_RIG_STATE_FILE="$PG_RIG_REPO/.test-rig/pg-rig.env"
PG_RIG_MAJOR=15
PG_RIG_PORT=5432
PG_RIG_TMP_PREFIX="/tmp/cm-pg." # short: the socket path must fit in 108 bytes
PG_RIG_USER=${PG_RIG_USER:-postgres}

pg_rig_log() {
    printf 'pg-rig: %s\n' "$*" >&2
}

# The directory holding initdb, pg_ctl and postgres of PostgreSQL $PG_RIG_MAJOR.
pg_rig_bindir() {
    local cand
    for cand in "${PG_RIG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" \
        "/usr/lib/postgresql/$PG_RIG_MAJOR/bin"; do
        if [ -z "$cand" ] || [ ! -x "$cand/initdb" ] || [ ! -x "$cand/pg_ctl" ] ||
            [ ! -x "$cand/postgres" ]; then
            continue
        fi
        # e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        case $("$cand/postgres" --version 2>/dev/null) in
            *") $PG_RIG_MAJOR."*)
                printf '%s\n' "$cand"
                return 0
                ;;
        esac
    done
    return 1
}

pg_rig_psql() {
    local bindir
    if bindir=$(pg_rig_bindir) && [ -x "$bindir/psql" ]; then
        printf '%s\n' "$bindir/psql"
    else
        command -v psql
    fi
}

# Does a server answer a query at connection string $1? (never falls back to libpq defaults)
pg_rig_answers() {
    local psql
    [ -n "${1:-}" ] || return 1
    psql=$(pg_rig_psql) || return 1
    [ "$(PGCONNECT_TIMEOUT=10 timeout 20 "$psql" -X -q -A -t -d "$1" -c 'SELECT 1' \
        </dev/null 2>/dev/null)" = 1 ]
}

# A pid that is gone or a zombie counts as stopped.
pg_rig_alive() {
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Run "$@" as the owner of the rig directory $1 (PostgreSQL refuses to run as root), from
# inside that directory so the owner can read its working directory.
pg_rig_as_owner() {
    local dir=$1 owner
    shift
    if [ "$(id -u)" -ne 0 ]; then
        (cd "$dir" && "$@")
        return
    fi
    owner=$(stat -c %U "$dir") || return 1
    if [ "$owner" = root ]; then
        pg_rig_log "$dir belongs to root; PostgreSQL will not run as root"
        return 1
    fi
    (cd "$dir" && runuser -u "$owner" -- "$@")
}

pg_rig_ensure_user() {
    if id -u "$PG_RIG_USER" >/dev/null 2>&1; then
        return 0
    fi
    pg_rig_log "creating the system user $PG_RIG_USER to run PostgreSQL"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_RIG_USER"
}

pg_rig_start() {
    local bindir conn waited=0
    # Each step checks its status: callers run this under `if`, where `set -e` does not apply.
    if ! bindir=$(pg_rig_bindir); then
        pg_rig_log "no PostgreSQL $PG_RIG_MAJOR server found" \
            "(Debian: apt-get install postgresql-$PG_RIG_MAJOR postgresql-client-$PG_RIG_MAJOR)"
        return 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        pg_rig_ensure_user || return 1
    fi
    PG_RIG_DIR=$(mktemp -d "${PG_RIG_TMP_PREFIX}XXXXXX") || return 1
    PG_RIG_PID=
    if [ "$(id -u)" -eq 0 ]; then
        # Its own, mode 0700 (mktemp's): only it and root reach the socket.
        chown "$PG_RIG_USER:" "$PG_RIG_DIR" || {
            pg_rig_stop
            return 1
        }
    fi
    if ! pg_rig_as_owner "$PG_RIG_DIR" "$bindir/initdb" -D "$PG_RIG_DIR/data" -U postgres \
        --auth-local=trust --auth-host=reject --locale=C --encoding=UTF8 --no-sync \
        --no-instructions >"$PG_RIG_DIR/initdb.log" 2>&1; then
        pg_rig_log "initdb failed; the end of its output:"
        tail -n 20 "$PG_RIG_DIR/initdb.log" >&2 || true
        pg_rig_stop
        return 1
    fi
    # Appended last, so these win over initdb's defaults.
    cat >>"$PG_RIG_DIR/data/postgresql.conf" <<EOF || {

# scripts/pg-rig.sh: a throwaway test cluster, reachable only through its Unix socket
listen_addresses = ''
unix_socket_directories = '$PG_RIG_DIR'
unix_socket_permissions = 0700
port = $PG_RIG_PORT
fsync = off
synchronous_commit = off
full_page_writes = off
jit = off
EOF
        pg_rig_stop
        return 1
    }
    # pg_ctl puts the postmaster in its own session: a Ctrl-C on the caller does not reach it,
    # pg_rig_stop (the caller's EXIT trap) shuts it down.
    if ! pg_rig_as_owner "$PG_RIG_DIR" "$bindir/pg_ctl" start -D "$PG_RIG_DIR/data" \
        -l "$PG_RIG_DIR/postgres.log" -w -t 60 -s </dev/null >/dev/null 2>&1; then
        pg_rig_log "the server did not start; the end of its log:"
        tail -n 20 "$PG_RIG_DIR/postgres.log" >&2 || true
        pg_rig_stop
        return 1
    fi
    PG_RIG_PID=$(head -n 1 "$PG_RIG_DIR/data/postmaster.pid" 2>/dev/null || true)
    until "$bindir/pg_isready" -q -h "$PG_RIG_DIR" -p "$PG_RIG_PORT" -d postgres -U postgres; do
        if [ -z "$PG_RIG_PID" ] || ! pg_rig_alive "$PG_RIG_PID" || [ "$waited" -ge 120 ]; then
            pg_rig_log "the server does not answer; the end of its log:"
            tail -n 20 "$PG_RIG_DIR/postgres.log" >&2 || true
            pg_rig_stop
            return 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    conn="postgresql:///postgres?host=$PG_RIG_DIR&user=postgres"
    if ! pg_rig_answers "$conn"; then
        pg_rig_log "the server is up but does not answer a query at $conn"
        pg_rig_stop
        return 1
    fi
    export COOLIFY_MIGRATE_TEST_PG="$conn"
    export PG_RIG_DIR PG_RIG_PID
    pg_rig_log "private PostgreSQL $PG_RIG_MAJOR pid $PG_RIG_PID answering at $conn"
}

# The direct children of pid $1 (a postmaster's backends and auxiliary processes).
pg_rig_children() {
    local p stat
    for p in /proc/[0-9]*; do
        stat=$(sed -e 's/^.*) //' "$p/stat" 2>/dev/null) || continue
        [ "$(printf '%s\n' "$stat" | cut -d' ' -f2)" = "$1" ] && printf '%s\n' "${p#/proc/}"
    done
    return 0
}

# Stops the cluster this shell started (PG_RIG_DIR, PG_RIG_PID), or else the one recorded by
# `scripts/pg-rig.sh start`, and removes its directory.
pg_rig_stop() {
    local dir=${PG_RIG_DIR:-} pid=${PG_RIG_PID:-} bindir cmdline kids p waited=0
    if [ -z "$dir" ] && [ -f "$PG_RIG_STATE_FILE" ]; then
        # shellcheck source=/dev/null
        . "$PG_RIG_STATE_FILE"
        dir=${PG_RIG_DIR:-} pid=${PG_RIG_PID:-}
    fi
    if [ -z "$dir" ]; then
        pg_rig_log "no private PostgreSQL to stop"
        return 0
    fi
    case $dir in
        "$PG_RIG_TMP_PREFIX"*) ;;
        *)
            pg_rig_log "refusing to clean $dir: not a rig directory"
            return 1
            ;;
    esac
    if [ -z "$pid" ] && [ -r "$dir/data/postmaster.pid" ]; then
        pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    fi
    # Only ever signal our own postmaster: the pid must still be a postgres using this directory.
    if [ -n "$pid" ] && pg_rig_alive "$pid"; then
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        case $cmdline in
            *postgres*"$dir/data"*)
                if bindir=$(pg_rig_bindir); then
                    pg_rig_as_owner "$dir" "$bindir/pg_ctl" stop -D "$dir/data" -m fast -w \
                        -t 30 -s >/dev/null 2>&1 || true
                fi
                if pg_rig_alive "$pid"; then
                    pg_rig_log "postgres $pid did not stop on pg_ctl stop -m fast; sending SIGQUIT"
                    kill -QUIT "$pid" 2>/dev/null || true
                fi
                while pg_rig_alive "$pid" && [ "$waited" -lt 20 ]; do
                    sleep 0.5
                    waited=$((waited + 1))
                done
                if pg_rig_alive "$pid"; then
                    pg_rig_log "postgres $pid did not stop; killing it and its children"
                    kids=$(pg_rig_children "$pid")
                    kill -KILL "$pid" 2>/dev/null || true
                    for p in $kids; do
                        kill -KILL "$p" 2>/dev/null || true
                    done
                fi
                ;;
            *) pg_rig_log "pid $pid is no longer this rig's postgres; not signalling it" ;;
        esac
    fi
    rm -rf -- "$dir"
    # The record names this cluster only: a cluster started by another shell keeps its own.
    if [ -f "$PG_RIG_STATE_FILE" ] && grep -qF -- "$dir" "$PG_RIG_STATE_FILE"; then
        rm -f -- "$PG_RIG_STATE_FILE"
    fi
    unset PG_RIG_DIR PG_RIG_PID
    if [ "${COOLIFY_MIGRATE_TEST_PG:-}" = "postgresql:///postgres?host=$dir&user=postgres" ]; then
        unset COOLIFY_MIGRATE_TEST_PG
    fi
    pg_rig_log "private PostgreSQL stopped and removed"
}

pg_rig_main() {
    case ${1:-} in
        start)
            if pg_rig_answers "${COOLIFY_MIGRATE_TEST_PG:-}"; then
                pg_rig_log "COOLIFY_MIGRATE_TEST_PG already answers; not starting another cluster"
            elif [ -f "$PG_RIG_STATE_FILE" ] && (
                # shellcheck source=/dev/null
                . "$PG_RIG_STATE_FILE"
                pg_rig_answers "postgresql:///postgres?host=${PG_RIG_DIR:-}&user=postgres"
            ); then
                # shellcheck source=/dev/null
                . "$PG_RIG_STATE_FILE"
                COOLIFY_MIGRATE_TEST_PG="postgresql:///postgres?host=$PG_RIG_DIR&user=postgres"
                pg_rig_log "the cluster recorded in $PG_RIG_STATE_FILE answers; not starting another"
            else
                pg_rig_start
                mkdir -p "$(dirname "$PG_RIG_STATE_FILE")"
                printf 'PG_RIG_DIR=%q\nPG_RIG_PID=%q\n' "$PG_RIG_DIR" "$PG_RIG_PID" \
                    >"$PG_RIG_STATE_FILE"
            fi
            printf 'export COOLIFY_MIGRATE_TEST_PG=%q\n' "$COOLIFY_MIGRATE_TEST_PG"
            ;;
        stop)
            # The recorded cluster, not whatever a caller's environment names.
            unset PG_RIG_DIR PG_RIG_PID
            pg_rig_stop
            ;;
        status)
            local conn=${COOLIFY_MIGRATE_TEST_PG:-}
            if [ -z "$conn" ] && [ -f "$PG_RIG_STATE_FILE" ]; then
                # shellcheck source=/dev/null
                . "$PG_RIG_STATE_FILE"
                conn="postgresql:///postgres?host=${PG_RIG_DIR:-}&user=postgres"
            fi
            if pg_rig_answers "$conn"; then
                echo "PostgreSQL at $conn answers"
            else
                echo "no PostgreSQL answers at COOLIFY_MIGRATE_TEST_PG='$conn'"
                return 1
            fi
            ;;
        *)
            echo "usage: $0 start|stop|status" >&2
            return 2
            ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    pg_rig_main "$@"
fi
