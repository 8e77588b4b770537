#!/usr/bin/env bash
# Install or upgrade Coolify v3 (or Redash) with coolify-migrate, keeping data and keys.
#
#   install.sh [-f] [-r] [-x VERSION] [-d] [--app APP] [--dir DIR] [--manifest FILE|URL]
#              [--install-docker]
#
# Every check runs before anything is touched; a failed check prints one line and exits 3 (as
# the tool does for "refused before any change"). Then it installs the tool into its own
# virtualenv, creates <dir>/.env with strong secrets (or adds only the keys that are missing,
# keeping a 0600 copy of the previous file), and runs `coolify-migrate upgrade`, so migrations,
# backups and hooks run exactly as in a manual upgrade. Running it again is always safe.
#
# Secrets never pass through this script: the tool generates and writes them, and its output is
# redacted. That is why -d (set -x) cannot print a key.

# The bash check must be plain POSIX sh: it runs before anything bash-only.
if [ -z "${BASH_VERSION:-}" ]; then
    echo "error: install.sh must run under bash (hint: run it as 'bash install.sh ...')" >&2
    exit 3
fi
set -euo pipefail

readonly REFUSED=3 USAGE=2 MIN_DOCKER_MAJOR=20 MIN_DOCKER_MINOR=10 MIN_PYTHON_MINOR=11
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")

usage() {
    cat <<'EOF'
Usage: install.sh [options]

Install Coolify v3 or Redash, or upgrade an existing install, keeping its data and keys.

  -f, --force          no questions; re-install or upgrade, keeping data and keys
  -r, --restart        restart the app only (recreated from the host .env if it differs)
  -x, --version V      install/upgrade to version V (a leading v is accepted)
  -d, --debug          print each command as it runs (never prints secrets)
  -h, --help           show this help
      --app APP        coolify-v3 (default) or redash
      --dir DIR        install directory [default: ~/coolify; /opt/redash for Redash]
      --manifest SRC   versions.json, a path or an http(s) URL [default: the bundled one]
      --venv DIR       where the tool's virtualenv goes [default: DIR/.venv-coolify-migrate]
      --install-docker install the distribution's Docker package when Docker is missing

Environment: COOLIFY_MIGRATE_PIP_SPEC (what pip installs; default this checkout, else the
coolify-migrate package), COOLIFY_MIGRATE_PYTHON (interpreter for the virtualenv, default
python3), COOLIFY_MIGRATE_MIN_FREE_MB (free disk required, default 2048).
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

force=0 restart_only=0 debug=0 install_docker=0
version="" dir="" manifest="" venv="" app=coolify-v3
while [ $# -gt 0 ]; do
    case $1 in
        -f | --force) force=1 ;;
        -r | --restart) restart_only=1 ;;
        -d | --debug) debug=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        --install-docker) install_docker=1 ;;
        -x | --version | --dir | --manifest | --venv | --app)
            if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
            case $1 in
                -x | --version) version=$2 ;;
                --dir) dir=$2 ;;
                --manifest) manifest=$2 ;;
                --venv) venv=$2 ;;
                --app) app=$2 ;;
            esac
            shift
            ;;
        --dir=* | --manifest=* | --venv=* | --version=* | --app=*)
            value=${1#*=}
            [ -n "$value" ] || usage_error "${1%%=*} needs a value"
            case $1 in
                --dir=*) dir=$value ;;
                --manifest=*) manifest=$value ;;
                --venv=*) venv=$value ;;
                --version=*) version=$value ;;
                --app=*) app=$value ;;
            esac
            ;;
        *) usage_error "unknown option '$1'" ;;
    esac
    shift
done

case $app in
    coolify-v3) title="Coolify" env_name=.env default_dir=$HOME/coolify ;;
    redash) title="Redash" env_name=env default_dir=/opt/redash ;;
    *) usage_error "unknown app '$app' (coolify-v3 or redash)" ;;
esac
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

check_user_and_dir
check_disk
check_python
check_docker
check_not_swarm_manager

cm="$venv/bin/coolify-migrate"
cm_run() {
    local extra=(--app "$app")
    [ "$debug" = 1 ] && extra+=(--debug)
    "$cm" "$@" "${extra[@]}"
}

if [ "$restart_only" = 1 ]; then
    [ -x "$cm" ] || refuse "coolify-migrate is not installed in $venv" "run install.sh without -r first"
    [ -f "$dir/$env_name" ] || refuse "no $dir/$env_name: nothing is installed there" "run install.sh without -r first"
    cm_run restart --data-dir "$dir" --runtime docker
    exit 0
fi

if [ "$force" != 1 ]; then
    # The only question: it comes before anything is touched.
    if [ ! -t 0 ]; then
        refuse "no terminal to ask on" "pass -f to install or upgrade without questions"
    fi
    read -r -p "Install or upgrade $title in $dir (data and keys are kept)? [y/N] " answer
    case $answer in
        y | Y | yes) ;;
        *) refuse "cancelled; nothing was changed" "run again and answer y, or pass -f" ;;
    esac
fi

# -- install ------------------------------------------------------------------------------------

pip_spec=${COOLIFY_MIGRATE_PIP_SPEC:-}
if [ -z "$pip_spec" ]; then
    if [ -f "$REPO_DIR/pyproject.toml" ] && grep -q '^name = "coolify-migrate"' "$REPO_DIR/pyproject.toml"; then
        pip_spec=$REPO_DIR # run from a checkout: install exactly this code, offline
    else
        pip_spec=coolify-migrate
    fi
fi
if [ "$app" = redash ] && [ -z "${COOLIFY_MIGRATE_PIP_SPEC:-}" ]; then
    pip_spec="${pip_spec}[postgres,compose]" # its PostgreSQL driver and docker compose v2
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtualenv $venv"
    "$python" -m venv "$venv"
fi
if [ ! -x "$cm" ] || [ "$force" = 1 ]; then
    say "installing coolify-migrate ($pip_spec) into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "$pip_spec"
fi

manifest_args=()
[ -n "$manifest" ] && manifest_args=(--manifest "$manifest")
version_args=()
[ -n "$version" ] && version_args=(--version "$version")
target=$(cm_run target-version "${manifest_args[@]}" "${version_args[@]}")
say "target version: $target"

cm_run prepare-env --data-dir "$dir" --version "$target" --runtime docker
cm_run upgrade --data-dir "$dir" --to "$target" --runtime docker --yes "${manifest_args[@]}"
cm_run start --data-dir "$dir" --runtime docker
say "done: $title $target runs from $dir (the tool: $cm)"
