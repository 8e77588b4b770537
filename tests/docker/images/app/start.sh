#!/bin/sh
# What a Coolify v3 container does when it starts, reduced to what the upgrade tests depend on:
#
# 1. A first start finds no /app/db/prod.db in the volume and creates it (the schema).
# 2. From 3.12.33 the seed script loads /app/.env for what its environment leaves unset, then
#    re-encrypts every secret from COOLIFY_SECRET_KEY to COOLIFY_SECRET_KEY_BETTER (a fresh
#    random key when BETTER is empty) whenever the two differ, and rewrites /app/.env with
#    KEY = BETTER = the new key plus COOLIFY_SECRET_KEY_OLD_<ms> = the old one. v3 has no MAC,
#    so data that was not under KEY becomes garbage: simulated here by overwriting every
#    encrypted value with random, well-formed ciphertext.
# 3. It reports healthy (the HEALTHCHECK tests /tmp/healthy), unless built never to, and idles
#    until SIGTERM, which ends it at once so `docker stop` does not wait out its timeout.
#
# It never prints a key: the tests search container logs for secret values.
set -u

DB=/app/db/prod.db
VERSION=${COOLIFY_TEST_APP_VERSION:-0}
echo "coolify test image $VERSION starting"

# True when dotted version $1 >= $2 (numeric parts only, which is all v3 tags have).
version_at_least() {
    a=$1
    b=$2
    while [ -n "$a$b" ]; do
        x=${a%%.*}
        y=${b%%.*}
        [ "${x:-0}" -gt "${y:-0}" ] && return 0
        [ "${x:-0}" -lt "${y:-0}" ] && return 1
        case $a in *.*) a=${a#*.} ;; *) a= ;; esac
        case $b in *.*) b=${b#*.} ;; *) b= ;; esac
    done
    return 0
}

mkdir -p /app/db
if [ ! -f "$DB" ]; then
    sqlite3 "$DB" </app/schema.sql || exit 1
    echo "created $DB"
fi

if version_at_least "$VERSION" 3.12.33; then
    # The app's dotenv loader fills what the environment leaves unset from /app/.env (a key a
    # previous start rolled to lives only there); it never overrides the environment.
    if [ -f /app/.env ]; then
        for name in COOLIFY_SECRET_KEY COOLIFY_SECRET_KEY_BETTER; do
            if [ -z "$(printenv "$name")" ]; then
                found=$(grep "^$name=" /app/.env | tail -n 1 | cut -d= -f2-)
                [ -n "$found" ] && export "$name=$found"
            fi
        done
    fi
    env | grep '^COOLIFY' | grep -v '^COOLIFY_TEST_' >/app/.env.new
    old=${COOLIFY_SECRET_KEY:-}
    new=${COOLIFY_SECRET_KEY_BETTER:-}
    if [ -z "$new" ]; then
        new=$(head -c 24 /dev/urandom | base64 | head -c 32)
    fi
    if [ "$new" != "$old" ]; then
        echo "re-encrypting everything"
        sqlite3 "$DB" </app/garble.sql || exit 1
        grep -v '^COOLIFY_SECRET_KEY=' /app/.env.new | grep -v '^COOLIFY_SECRET_KEY_BETTER=' \
            >/app/.env.tmp
        {
            echo "COOLIFY_SECRET_KEY=$new"
            echo "COOLIFY_SECRET_KEY_BETTER=$new"
            echo "COOLIFY_SECRET_KEY_OLD_$(date +%s)000=$old"
        } >>/app/.env.tmp
        mv /app/.env.tmp /app/.env.new
    fi
    mv /app/.env.new /app/.env
fi

if [ "${COOLIFY_TEST_HEALTHY:-1}" = 1 ]; then
    touch /tmp/healthy
fi
echo "started"

trap 'kill "$idle" 2>/dev/null; exit 0' TERM INT
while :; do
    sleep 3600 &
    idle=$!
    wait "$idle"
done
