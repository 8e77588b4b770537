#!/usr/bin/env bash
# Every check this project has, the same way locally and in CI, from a fresh Debian machine:
#
#   1. the virtualenv (.venv) with the package and its test extras;
#   2. host tools: docker.io, busybox-static, sqlite3, shellcheck, postgresql-15 and
#      postgresql-client-15 (apt, only what is missing; the services packages bring are not
#      started);
#   3. a Docker engine that answers: DOCKER_HOST when it does, else a private dockerd started by
#      scripts/docker-rig.sh and stopped by its pid when this script exits;
#   4. a PostgreSQL 15 server that answers: COOLIFY_MIGRATE_TEST_PG when it does, else a private
#      cluster on a Unix socket started by scripts/pg-rig.sh and stopped when this script exits;
#   5. the local test images (no network needed);
#   6. shellcheck, ruff check, ruff format --check, mypy (strict), pytest.
#
# Usage: scripts/test.sh [pytest args...]    e.g. scripts/test.sh -x -k envfile
# Under CI=true the Docker and PostgreSQL tests fail instead of skipping when there is no engine
# or server (COOLIFY_MIGRATE_REQUIRE_DOCKER=1, COOLIFY_MIGRATE_REQUIRE_PG=1).
# The last lines say how many Docker tests ran; the exit status is non-zero if any step failed.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
STATE="$REPO/.test-rig"
mkdir -p "$STATE"
VENV="$REPO/.venv"
PY="$VENV/bin/python"
started=$(date +%s)

step() {
    printf '\n==> %s\n' "$*"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        echo "test.sh: '$*' needs root; run it yourself or run this script as root" >&2
        return 1
    fi
}

# What this script started is stopped on every way out: success, failure, Ctrl-C, kill.
# Each only if this script started it (a DOCKER_HOST or COOLIFY_MIGRATE_TEST_PG that already
# answered is left alone); a failure to stop one does not keep the other running.
docker_started=0
pg_started=0
policy_written=""
cleanup() {
    if [ "$pg_started" = 1 ] && [ -n "${PG_RIG_DIR:-}" ]; then
        pg_rig_stop || true
    fi
    if [ "$docker_started" = 1 ]; then
        rig_stop || true
    fi
    if [ -n "$policy_written" ]; then
        rm -f -- "$policy_written"
    fi
}
trap cleanup EXIT
# So that the EXIT trap runs on Ctrl-C and on kill too.
trap 'exit 130' INT
trap 'exit 143' TERM

# -- host tools ---------------------------------------------------------------------------------
apt_updated=0
apt_install() {
    echo "installing: $*"
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    # No service a package brings may start (a system dockerd; Debian's default PostgreSQL
    # cluster, which would listen on localhost:5432): the tests run private ones. policy-rc.d
    # exit 101 tells invoke-rc.d and deb-systemd-invoke not to start anything; it is removed
    # afterwards (and by the EXIT trap), and one the host already has is left as it is.
    local policy=/usr/sbin/policy-rc.d status=0
    if [ "$(id -u)" -eq 0 ] && [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# coolify-migrate scripts/test.sh: no service starts during its apt-get install\nexit 101\n' \
            >"$policy" && chmod 0755 "$policy" && policy_written=$policy
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null || status=$?
    if [ -n "$policy_written" ]; then
        rm -f -- "$policy_written"
        policy_written=""
    fi
    return "$status"
}

step "host tools"
missing=()
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    missing+=(docker.io)
fi
# busybox-static, not busybox: the test image's base must run without the host's libraries.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    missing+=(busybox-static)
fi
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v shellcheck >/dev/null || missing+=(shellcheck)
# The PostgreSQL rig's server (pg-rig.sh finds it) and the client programs (pg_dump, psql) of the
# same major version; the PostgreSQL test image is made from these too.
# shellcheck source=scripts/pg-rig.sh
. "$REPO/scripts/pg-rig.sh"
if ! pg_rig_bindir >/dev/null; then
    missing+=("postgresql-$PG_RIG_MAJOR")
fi
if [ ! -x "/usr/lib/postgresql/$PG_RIG_MAJOR/bin/pg_dump" ]; then
    missing+=("postgresql-client-$PG_RIG_MAJOR")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
else
    echo "all present"
fi

# -- virtualenv ---------------------------------------------------------------------------------
step "virtualenv"
if [ ! -x "$PY" ]; then
    # Debian's python3 creates a venv only with python3-venv installed.
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
fi
# Reinstall only when pyproject.toml changed since the last install into this venv.
stamp="$VENV/.coolify-migrate-installed"
want=$(sha256sum pyproject.toml | cut -c1-64)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] ||
    ! "$PY" -c 'import coolify_migrate, pytest' 2>/dev/null; then
    "$PY" -m pip install -q -e '.[test]'
    echo "$want" >"$stamp"
    echo "installed the package with its test extras"
else
    echo "up to date"
fi
export PATH="$VENV/bin:$PATH"

# -- Docker engine ------------------------------------------------------------------------------
step "Docker engine"
# shellcheck source=scripts/docker-rig.sh
. "$REPO/scripts/docker-rig.sh"
have_docker=0
if [ -n "${DOCKER_HOST:-}" ] && rig_answers "$DOCKER_HOST"; then
    echo "using DOCKER_HOST=$DOCKER_HOST"
    have_docker=1
else
    if [ -n "${DOCKER_HOST:-}" ]; then
        echo "DOCKER_HOST=$DOCKER_HOST does not answer; starting a private engine instead"
    fi
    unset DOCKER_HOST
    docker_started=1 # the EXIT trap stops it, even after a failed start-up
    if rig_start; then
        have_docker=1
    else
        echo "no Docker engine: the Docker tests will skip (or fail under CI=true)" >&2
    fi
fi
if [ "${CI:-}" = true ]; then
    export COOLIFY_MIGRATE_REQUIRE_DOCKER=1
fi

# -- PostgreSQL ---------------------------------------------------------------------------------
step "PostgreSQL"
if [ -n "${COOLIFY_MIGRATE_TEST_PG:-}" ] && pg_rig_answers "$COOLIFY_MIGRATE_TEST_PG"; then
    echo "using COOLIFY_MIGRATE_TEST_PG=$COOLIFY_MIGRATE_TEST_PG"
else
    if [ -n "${COOLIFY_MIGRATE_TEST_PG:-}" ]; then
        echo "COOLIFY_MIGRATE_TEST_PG=$COOLIFY_MIGRATE_TEST_PG does not answer; starting a private cluster instead"
    fi
    unset COOLIFY_MIGRATE_TEST_PG
    pg_started=1
    if pg_rig_start; then
        echo "COOLIFY_MIGRATE_TEST_PG=$COOLIFY_MIGRATE_TEST_PG"
    else
        echo "no PostgreSQL: the PostgreSQL tests will skip (or fail under CI=true)" >&2
    fi
fi
if [ "${CI:-}" = true ]; then
    export COOLIFY_MIGRATE_REQUIRE_PG=1
fi

failed=()
if [ "$have_docker" = 1 ]; then
    step "test images"
    PYTHON="$PY" rig_images || failed+=("test images")
fi

# -- checks -------------------------------------------------------------------------------------
run_check() {
    local name=$1
    shift
    step "$name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

run_check "shellcheck" shellcheck -x scripts/test.sh scripts/docker-rig.sh scripts/pg-rig.sh \
    .ci/run tests/docker/images/app/start.sh tests/docker/images/postgres/docker-entrypoint.sh \
    tests/docker/images/svc/svc.sh tests/docker/images/redash/redash.sh
# concise: one line per finding, so the log stays readable when there are many
run_check "ruff check" "$VENV/bin/ruff" check --output-format concise installer tests benchmarks
run_check "ruff format" "$VENV/bin/ruff" format --check --output-format concise \
    installer tests benchmarks
run_check "mypy" "$VENV/bin/mypy"

junit="$STATE/junit.xml"
rm -f "$junit"
run_check "pytest" "$VENV/bin/pytest" --junitxml="$junit" "$@"

# -- how many Docker tests really ran -----------------------------------------------------------
# The docker-marked node ids (collected without running) matched against the junit report of the
# run above: a test counts as run when it is in the report and was not skipped.
"$VENV/bin/pytest" -m docker --collect-only -q -p no:cacheprovider >"$STATE/docker-tests.txt" \
    2>/dev/null || true
docker_line=$("$PY" - "$junit" "$STATE/docker-tests.txt" <<'PYEOF'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

junit, listing = Path(sys.argv[1]), Path(sys.argv[2])
wanted = set()
for line in listing.read_text().splitlines():
    if "::" not in line:
        continue
    path, *rest = line.split("::")
    classname = ".".join([path[:-3].replace("/", "."), *rest[:-1]])
    wanted.add((classname, rest[-1]))
counts = {"passed": 0, "failed": 0, "skipped": 0}
if junit.exists():
    for case in ET.parse(junit).getroot().iter("testcase"):
        if (case.get("classname"), case.get("name")) not in wanted:
            continue
        if case.find("skipped") is not None:
            counts["skipped"] += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
        else:
            counts["passed"] += 1
ran = counts["passed"] + counts["failed"]
print(f"docker tests run: {ran} (passed {counts['passed']}, failed {counts['failed']}, "
      f"skipped {counts['skipped']}; {len(wanted)} marked docker)")
PYEOF
)

step "summary"
echo "$docker_line"
if [ "${CI:-}" = true ] && [[ $docker_line == "docker tests run: 0 "* ]]; then
    failed+=("no Docker test ran under CI")
fi
echo "took $(($(date +%s) - started)) s"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all checks passed"
