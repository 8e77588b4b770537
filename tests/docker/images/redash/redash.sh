#!/bin/sh
# Stand-in for Redash's image entrypoint. Settings come from the environment only (Compose's
# env_file), never from the command line, as in the real image.
#
#   server | scheduler | worker | *_worker  refuse to start without REDASH_COOKIE_SECRET (as
#        Redash 25 does), then check that the database's alembic head is this release's
#        ($REDASH_HEAD): a release started on a schema it does not know exits 1. Then healthy.
#   create_db             the schema of 8.0.0 (schema.sql) on an empty database, stamped
#   manage db upgrade     apply migrations/<from>-<to>.sql from the current head up to
#                         $REDASH_HEAD, each in one transaction, logging alembic's lines; with
#                         REDASH_BROKEN=1 the last one fails half-way, after a committed part
#   manage version        the release
set -u

log() { printf '%s\n' "$*"; }

# libpq's variables from REDASH_DATABASE_URL (postgresql://user:password@host:port/db), so the
# password never reaches an argument list.
pg_env() {
    url=${REDASH_DATABASE_URL:?REDASH_DATABASE_URL is not set}
    rest=${url#*://}
    auth=${rest%%@*}
    hostpart=${rest#*@}
    PGUSER=${auth%%:*}
    PGPASSWORD=${auth#*:}
    hostport=${hostpart%%/*}
    PGDATABASE=${hostpart#*/}
    PGHOST=${hostport%%:*}
    PGPORT=5432
    case $hostport in *:*) PGPORT=${hostport#*:} ;; esac
    export PGUSER PGPASSWORD PGHOST PGPORT PGDATABASE
}

head_now() {
    psql -XAtq -c "SELECT version_num FROM alembic_version" 2>/dev/null
}

wait_db() {
    i=0
    until psql -XAtq -c "SELECT 1" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -ge 60 ] && { log "database not reachable"; exit 1; }
        sleep 1
    done
}

serve() {
    role=$1
    if [ -z "${REDASH_COOKIE_SECRET+set}" ]; then
        log "Exception: You must set the REDASH_COOKIE_SECRET environment variable."
        exit 1
    fi
    pg_env
    wait_db
    head=$(head_now)
    if [ "$head" != "$REDASH_HEAD" ]; then
        log "redash $REDASH_VERSION $role: database at alembic head '${head:-none}', this release needs $REDASH_HEAD"
        exit 1
    fi
    log "redash $REDASH_VERSION $role ready"
    touch /tmp/healthy
    trap 'exit 0' TERM INT
    while :; do
        sleep 3600 &
        wait $!
    done
}

upgrade() {
    pg_env
    wait_db
    head=$(head_now)
    log "INFO  [alembic.runtime.migration] Context impl PostgresqlImpl."
    log "INFO  [alembic.runtime.migration] Will assume transactional DDL."
    while [ "$head" != "$REDASH_HEAD" ]; do
        step=""
        for file in /app/migrations/"$head"-*.sql; do
            [ -f "$file" ] && step=${file##*/}
        done
        if [ -z "$step" ]; then
            log "alembic.util.exc.CommandError: Can't locate revision identified by '$head'"
            exit 1
        fi
        to=${step#"$head"-}
        to=${to%.sql}
        log "INFO  [alembic.runtime.migration] Running upgrade $head -> $to"
        if [ "$REDASH_BROKEN" = 1 ] && [ "$to" = "$REDASH_HEAD" ]; then
            # the first statement commits on its own, then the migration fails
            psql -XAtq -v ON_ERROR_STOP=1 -c "$(head -n 1 "/app/migrations/$step")" || exit 1
            psql -XAtq -v ON_ERROR_STOP=1 -c "SELECT 1 / 0" || exit 1
        fi
        psql -XAtq -v ON_ERROR_STOP=1 -1 -f "/app/migrations/$step" || exit 1
        head=$to
    done
}

case ${1:-server} in
server | scheduler | worker | *_worker) serve "$1" ;;
create_db)
    pg_env
    wait_db
    if [ -n "$(head_now)" ]; then
        log "the database already has Redash's tables"
        exit 0
    fi
    psql -XAtq -v ON_ERROR_STOP=1 -1 -f /app/schema.sql || exit 1
    ;;
manage)
    shift
    case "$*" in
    "db upgrade") upgrade ;;
    version) log "$REDASH_VERSION" | sed 's/\.b[0-9]*$//' ;;
    *) log "Usage: manage [OPTIONS] COMMAND"; exit 2 ;;
    esac
    ;;
*) exec "$@" ;;
esac
