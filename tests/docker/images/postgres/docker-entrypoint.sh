#!/bin/sh
# coolify-migrate-test/postgres:15: a PostgreSQL 15 server for the Compose tests, built by
# scripts/docker-rig.sh with no network from the HOST's Debian postgresql-15 (the server, its
# extensions and client programs, the libraries ldd lists, the zoneinfo it uses) plus static
# busybox for this script. The image's settings are in image.changes beside this file.
#
# Contract (close to the official postgres image's, so Compose files read the same):
#
#   POSTGRES_PASSWORD  the superuser's password, set on first start (stored as SCRAM-SHA-256);
#                      TCP logins need it. Unset: no TCP login is possible (there is no password
#                      to give), the local socket still works.
#   POSTGRES_USER      the superuser, created on first start (default postgres)
#   POSTGRES_DB        a database created on first start if it is not postgres (default postgres)
#   PGDATA             the cluster (default /var/lib/postgresql/data; mount a volume there)
#
#   - A first start (no $PGDATA/PG_VERSION) runs initdb (locale C, UTF8); a later start keeps
#     the data and ignores the variables above.
#   - Authentication: the Unix socket (/var/run/postgresql) is trusted, TCP asks for the
#     password (scram-sha-256) from any address.
#   - The server listens on 0.0.0.0:5432 INSIDE the container (run it with --network none or on
#     a private Compose network; publish no port), runs as the user postgres (uid/gid 999, as in
#     the official image), with jit off (no LLVM in the image). Started as root (the default),
#     this script hands $PGDATA to postgres first; `--user postgres` works too, without root.
#   - SIGTERM (docker stop) or SIGINT: fast shutdown (sessions are ended, the data are
#     consistent), so it stops in about a second.
#   - HEALTHCHECK: pg_isready over TCP to 127.0.0.1:5432, which the temporary server of the
#     first start never opens, so "healthy" means initialised and serving.
#   - psql, pg_dump, pg_restore, pg_isready, createdb... are on PATH
#     (/usr/lib/postgresql/15/bin): backups run `docker exec <c> pg_dump -U postgres ...`.
#   - Arguments starting with "-" go to postgres (e.g. `-c shared_buffers=64MB`); any other
#     command is run as given (e.g. `psql`, `sh`).
set -eu

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=postgres}"
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
SOCKETS=/var/run/postgresql

log() {
    echo "entrypoint: $*" >&2
}

# Run "$@" as postgres (PostgreSQL refuses root); directly when the container runs as non-root.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        # busybox su parses options anywhere before "--": the command's own go after it.
        su -p -s /bin/sh -c 'exec "$@"' -- postgres entrypoint "$@"
    else
        "$@"
    fi
}

if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "${1:-}" != postgres ]; then
    exec "$@"
fi
shift

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" "$SOCKETS"
    # A new volume, or a cluster restored by root: hand everything to postgres.
    find "$PGDATA" "$SOCKETS" ! -user postgres -exec chown postgres:postgres {} +
    chmod 0700 "$PGDATA"
    chmod 0775 "$SOCKETS"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "initialising $PGDATA (superuser $POSTGRES_USER)"
    pwfile=
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        pwfile=$(mktemp)
        printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
        [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
    else
        log "POSTGRES_PASSWORD is not set: TCP logins are impossible until a password is set"
    fi
    as_postgres initdb -D "$PGDATA" --username="$POSTGRES_USER" ${pwfile:+"--pwfile=$pwfile"} \
        --auth-local=trust --auth-host=scram-sha-256 --locale=C --encoding=UTF8 >/dev/null
    [ -n "$pwfile" ] && rm -f "$pwfile"
    cat >"$PGDATA/pg_hba.conf" <<'EOF'
# TYPE  DATABASE  USER  ADDRESS    METHOD
local   all       all              trust
host    all       all   0.0.0.0/0  scram-sha-256
host    all       all   ::/0       scram-sha-256
EOF
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # A temporary server on a private socket only: the health check cannot see it.
        initsock=$(mktemp -d)
        [ "$(id -u)" = 0 ] && chown postgres "$initsock"
        as_postgres pg_ctl -D "$PGDATA" -w -s -o "-c listen_addresses='' -c unix_socket_directories=$initsock" start
        as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$initsock" -U "$POSTGRES_USER" -d postgres \
            -v db="$POSTGRES_DB" <<'EOF'
CREATE DATABASE :"db";
EOF
        as_postgres pg_ctl -D "$PGDATA" -w -s -m fast stop
        rm -rf "$initsock"
    fi
    log "initialised"
fi
unset POSTGRES_PASSWORD

# PID 1 stays this shell so that SIGTERM (docker stop) becomes a fast shutdown (SIGINT): the
# postmaster's own SIGTERM is a "smart" shutdown, which waits for every session to end.
pid=
trap '[ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; :' TERM INT
set -- postgres -D "$PGDATA" -c listen_addresses=0.0.0.0 -c port=5432 \
    -c "unix_socket_directories=$SOCKETS" -c jit=off "$@"
# Not through as_postgres: $! must be the postmaster itself (su and sh exec), not a subshell.
if [ "$(id -u)" = 0 ]; then
    su -p -s /bin/sh -c 'exec "$@"' -- postgres entrypoint "$@" &
else
    "$@" &
fi
pid=$!
status=0
while :; do
    wait "$pid" && status=0 || status=$?
    # wait returns early when a trapped signal arrives; the server may still be shutting down.
    kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
