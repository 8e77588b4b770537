#!/usr/bin/env bash
# A private, disposable Docker engine for the tests, and the local test images.
#
#   scripts/docker-rig.sh start    start a private dockerd; prints `export DOCKER_HOST=...`
#   scripts/docker-rig.sh stop     stop the engine `start` left running (by its pid), clean up
#   scripts/docker-rig.sh images   build the test images on the engine DOCKER_HOST names
#   scripts/docker-rig.sh status   say whether DOCKER_HOST answers
#
# Sourced (as scripts/test.sh does) it only defines the rig_* functions: rig_start then exports
# DOCKER_HOST into the caller, whose EXIT trap calls rig_stop.
#
# Why a private engine: the Docker tests remove containers named coolify* and the volume
# coolify-db; against a host's real engine that would delete a real Coolify. This one keeps its
# data root, exec root, pid file and socket in a temp dir, adds no bridge and no iptables rules,
# and is stopped by its pid, so it changes nothing on the host and leaves nothing behind.
#
# The images need no network: the base is `docker import`ed from a rootfs holding the host's
# static busybox and its sqlite3 (with the libraries ldd lists); the app images are built FROM it
# and tagged like the real Coolify images. A build is skipped when the tag already carries the
# hash of its build context.

set -euo pipefail

RIG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIG_STATE_DIR="$RIG_REPO/.test-rig"
RIG_BASE_IMAGE="coolify-migrate-test/base:latest"
RIG_APP_REPO="ghcr.io/coollabsio/coolify"
RIG_HEALTHY_VERSIONS=(3.12.32 3.12.33 3.12.35 3.12.36)
RIG_NEVER_HEALTHY_VERSION=3.12.37
RIG_LABEL="org.coolify-migrate.test.context"
RIG_TMP_PREFIX="/tmp/cm-rig."  # short: the socket path must fit in 108 bytes

rig_log() {
    printf 'docker-rig: %s\n' "$*" >&2
}

# Does the engine at $1 answer? (never falls back to the default socket)
rig_answers() {
    [ -n "${1:-}" ] && DOCKER_HOST="$1" timeout 20 docker info >/dev/null 2>&1
}

# A pid that is gone or a zombie counts as stopped.
rig_alive() {
    local state
    [ -r "/proc/$1/stat" ] || return 1
    state=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

rig_start() {
    if [ "$(id -u)" -ne 0 ]; then
        rig_log "a private dockerd needs root; set DOCKER_HOST to an engine you may use instead"
        return 1
    fi
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
        rig_log "dockerd or docker not found (Debian: apt-get install docker.io)"
        return 1
    fi
    # Each step checks its status: callers run this under `if`, where `set -e` does not apply.
    RIG_DIR=$(mktemp -d "${RIG_TMP_PREFIX}XXXXXX") || return 1
    mkdir -p "$RIG_DIR/data" "$RIG_DIR/exec" || return 1
    # An empty config file, so a host /etc/docker/daemon.json cannot conflict with these flags.
    printf '{}\n' >"$RIG_DIR/daemon.json" || return 1
    # setsid: a Ctrl-C on the caller must not kill the engine before rig_stop shuts it down.
    # Its own containerd namespaces keep it apart from a system containerd it may share.
    setsid dockerd \
        --config-file "$RIG_DIR/daemon.json" \
        --data-root "$RIG_DIR/data" \
        --exec-root "$RIG_DIR/exec" \
        --pidfile "$RIG_DIR/dockerd.pid" \
        -H "unix://$RIG_DIR/docker.sock" \
        --containerd-namespace cm-rig \
        --containerd-plugins-namespace cm-rig-plugins \
        --storage-driver=vfs --bridge=none --iptables=false --ip-masq=false \
        </dev/null >"$RIG_DIR/dockerd.log" 2>&1 &
    RIG_PID=$!
    mkdir -p "$RIG_STATE_DIR" &&
        printf 'RIG_DIR=%q\nRIG_PID=%q\n' "$RIG_DIR" "$RIG_PID" >"$RIG_STATE_DIR/rig.env"
    local host="unix://$RIG_DIR/docker.sock" waited=0
    until rig_answers "$host"; do
        if ! rig_alive "$RIG_PID"; then
            rig_log "dockerd exited during start-up; the end of its log:"
            tail -n 20 "$RIG_DIR/dockerd.log" >&2 || true
            rig_stop
            return 1
        fi
        if [ "$waited" -ge 120 ]; then
            rig_log "dockerd did not answer within 60 s; the end of its log:"
            tail -n 20 "$RIG_DIR/dockerd.log" >&2 || true
            rig_stop
            return 1
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    export DOCKER_HOST="$host"
    # Tells tests/docker/conftest.py this engine is ours to clean.
    export COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1
    export RIG_DIR RIG_PID
    rig_log "private engine pid $RIG_PID answering at $DOCKER_HOST"
}

# Unmount whatever containers left mounted under $1, deepest first.
rig_unmount_under() {
    local dir=$1 mnt
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r mnt; do
            umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || rig_log "cannot unmount $mnt"
        done
}

rig_stop() {
    local dir=${RIG_DIR:-} pid=${RIG_PID:-} waited=0 cmdline p
    if [ -z "$dir" ] && [ -f "$RIG_STATE_DIR/rig.env" ]; then
        # shellcheck source=/dev/null
        . "$RIG_STATE_DIR/rig.env"
        dir=${RIG_DIR:-} pid=${RIG_PID:-}
    fi
    if [ -z "$dir" ]; then
        rig_log "no private engine to stop"
        return 0
    fi
    case $dir in
        "$RIG_TMP_PREFIX"*) ;;
        *)
            rig_log "refusing to clean $dir: not a rig directory"
            return 1
            ;;
    esac
    # Only ever signal our own dockerd: the pid must still be a dockerd using this directory.
    if [ -n "$pid" ] && rig_alive "$pid"; then
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        case $cmdline in
            *dockerd*"$dir"*)
                kill -TERM "$pid" 2>/dev/null || true
                while rig_alive "$pid" && [ "$waited" -lt 60 ]; do
                    sleep 0.5
                    waited=$((waited + 1))
                done
                if rig_alive "$pid"; then
                    rig_log "dockerd $pid did not stop within 30 s; killing it"
                    kill -KILL "$pid" 2>/dev/null || true
                    sleep 1
                    # After a forced stop its containerd and shims may remain; their command
                    # lines name this directory, so only this engine's processes match.
                    for p in /proc/[0-9]*; do
                        p=${p#/proc/}
                        if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$dir"; then
                            kill -KILL "$p" 2>/dev/null || true
                        fi
                    done
                fi
                ;;
            *) rig_log "pid $pid is no longer this rig's dockerd; not signalling it" ;;
        esac
    fi
    wait "$pid" 2>/dev/null || true # reap it when it is our child
    rig_unmount_under "$dir"
    rm -rf -- "$dir"
    rm -f -- "$RIG_STATE_DIR/rig.env"
    unset RIG_DIR RIG_PID
    rig_log "private engine stopped and removed"
}

rig_label_of() {
    docker image inspect -f "{{index .Config.Labels \"$RIG_LABEL\"}}" "$1" 2>/dev/null || true
}

rig_tar() {
    # Byte-stable archive of a directory: its hash names the build context.
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - .
}

# The base rootfs: static busybox with its applet links, plus the host's sqlite3 and every shared
# library (and the dynamic loader) ldd lists for it, so `sqlite3` runs inside.
# Every step checks its own status: callers run this under `||`, where `set -e` does not apply.
rig_stage_rootfs() {
    local root=$1 bb sq applet lib libs
    bb=$(command -v busybox || true)
    sq=$(command -v sqlite3 || true)
    if [ -z "$bb" ] || [ -z "$sq" ]; then
        rig_log "the test images need busybox-static and sqlite3 on this host (apt-get install busybox-static sqlite3)"
        return 1
    fi
    if ldd "$bb" >/dev/null 2>&1; then
        rig_log "$bb is dynamically linked; install busybox-static"
        return 1
    fi
    mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/app" "$root/usr/bin" || return 1
    chmod 1777 "$root/tmp" || return 1
    cp -L "$bb" "$root/bin/busybox" || return 1
    for applet in $("$bb" --list-full); do
        [ "$applet" = bin/busybox ] && continue
        mkdir -p "$root/$(dirname "$applet")" && ln -sf /bin/busybox "$root/$applet" || return 1
    done
    cp -L "$sq" "$root/usr/bin/sqlite3" || return 1
    libs=$(ldd "$sq" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }') || return 1
    for lib in $libs; do
        mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib" || return 1
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd" || return 1
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group" || return 1
}

rig_images() {
    if ! rig_answers "${DOCKER_HOST:-}"; then
        rig_log "no engine answers at DOCKER_HOST='${DOCKER_HOST:-}' (start one: scripts/docker-rig.sh start)"
        return 1
    fi
    local stage status=0
    stage=$(mktemp -d)
    rig_build_images "$stage" || status=$?
    rm -rf -- "$stage"
    return "$status"
}

# Every step checks its own status, as above.
rig_build_images() {
    local stage=$1 py=${PYTHON:-$RIG_REPO/.venv/bin/python} src="$RIG_REPO/tests/docker/images"
    local built=0 fresh=0 base_hash base_id ctx_hash version healthy hash tag label log
    # A tag without our label is a real Coolify image: never replace one on an engine that is not
    # disposable (the rig's own engine says it is). Checked before anything is built.
    if [ "${COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE:-}" != 1 ]; then
        for version in "${RIG_HEALTHY_VERSIONS[@]}" "$RIG_NEVER_HEALTHY_VERSION"; do
            tag="$RIG_APP_REPO:$version"
            if docker image inspect "$tag" >/dev/null 2>&1 && [ -z "$(rig_label_of "$tag")" ]; then
                rig_log "$tag on this engine is not a test image; refusing to replace it"
                rig_log "use a disposable engine (scripts/docker-rig.sh start)," \
                    "or set COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1 if this one is"
                return 1
            fi
        done
    fi
    rig_stage_rootfs "$stage/rootfs" || return 1
    rig_tar "$stage/rootfs" >"$stage/base.tar" || return 1
    base_hash=$(sha256sum <"$stage/base.tar" | cut -c1-64) || return 1
    if [ "$(rig_label_of "$RIG_BASE_IMAGE")" = "$base_hash" ]; then
        fresh=$((fresh + 1))
    else
        docker import \
            --change "LABEL $RIG_LABEL=$base_hash" \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["/bin/sh"]' \
            "$stage/base.tar" "$RIG_BASE_IMAGE" >/dev/null || return 1
        built=$((built + 1))
    fi
    base_id=$(docker image inspect -f '{{.Id}}' "$RIG_BASE_IMAGE") || return 1

    mkdir "$stage/app" || return 1
    cp "$src/app/Dockerfile" "$src/app/start.sh" "$stage/app/" || return 1
    # schema.sql and garble.sql are generated from the package, so the image cannot drift from it.
    if ! "$py" "$src/make_context.py" "$stage/app"; then
        rig_log "generating the build context failed (is the package installed for $py?)"
        return 1
    fi
    chmod 0644 "$stage/app/Dockerfile" "$stage/app/schema.sql" "$stage/app/garble.sql" || return 1
    chmod 0755 "$stage/app/start.sh" || return 1
    ctx_hash=$({
        echo "$base_id"
        rig_tar "$stage/app" | sha256sum
    } | sha256sum | cut -c1-64) || return 1

    for version in "${RIG_HEALTHY_VERSIONS[@]}" "$RIG_NEVER_HEALTHY_VERSION"; do
        healthy=1
        [ "$version" = "$RIG_NEVER_HEALTHY_VERSION" ] && healthy=0
        hash=$(printf '%s %s %s\n' "$ctx_hash" "$version" "$healthy" | sha256sum | cut -c1-64)
        tag="$RIG_APP_REPO:$version"
        label=$(rig_label_of "$tag")
        if [ "$label" = "$hash" ]; then
            fresh=$((fresh + 1))
            continue
        fi
        # The classic builder: it needs no buildx plugin, and this Dockerfile no network.
        if ! log=$(DOCKER_BUILDKIT=0 docker build --network none \
            --build-arg "BASE=$RIG_BASE_IMAGE" --build-arg "VERSION=$version" \
            --build-arg "HEALTHY=$healthy" --build-arg "CONTEXT_HASH=$hash" \
            -t "$tag" "$stage/app" 2>&1); then
            printf '%s\n' "$log" >&2
            rig_log "building $tag failed"
            return 1
        fi
        built=$((built + 1))
    done
    rig_log "test images: $built built, $fresh already up to date"
}

rig_main() {
    case ${1:-} in
        start)
            if rig_answers "${DOCKER_HOST:-}"; then
                rig_log "DOCKER_HOST=$DOCKER_HOST already answers; not starting another engine"
                return 0
            fi
            rig_start
            printf 'export DOCKER_HOST=%q\nexport COOLIFY_MIGRATE_TEST_ENGINE_DISPOSABLE=1\n' "$DOCKER_HOST"
            ;;
        stop) rig_stop ;;
        images) rig_images ;;
        status)
            if rig_answers "${DOCKER_HOST:-}"; then
                echo "engine at $DOCKER_HOST answers"
            else
                echo "no engine answers at DOCKER_HOST='${DOCKER_HOST:-}'"
                return 1
            fi
            ;;
        *)
            echo "usage: $0 start|stop|images|status" >&2
            return 2
            ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    rig_main "$@"
fi
