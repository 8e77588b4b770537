#!/bin/sh
# One service of the stand-in app: says which role and version it runs, becomes healthy unless
# built never to, and idles until SIGTERM (which ends it at once). `svc.sh once ARGS` runs ARGS
# as a one-off command instead (what `docker compose run --rm` is used for).
set -u
role=${1:-app}
if [ "$role" = once ]; then
    shift
    exec "$@"
fi
echo "svc $role ${SVC_VERSION:-?} starting"
if [ "${SVC_HEALTHY:-1}" = 1 ]; then
    touch /tmp/healthy
fi
trap 'kill "$idle" 2>/dev/null; exit 0' TERM INT
while :; do
    sleep 3600 &
    idle=$!
    wait "$idle"
done
