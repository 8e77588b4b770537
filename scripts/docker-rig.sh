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
#
# coolify-migrate-test/postgres:15 (a PostgreSQL server for the Compose tests) is also imported
# from a rootfs, made from the HOST's PostgreSQL 15 (Debian's postgresql-15): its
# /usr/lib/postgresql/15 and /usr/share/postgresql/15 without the LLVM JIT, the libraries ldd
# lists for its programs and modules, the zoneinfo it reads, static busybox, a postgres user and
# tests/docker/images/postgres/docker-entrypoint.sh; its settings (entrypoint, health check,
# env) come from image.changes there (imported in one step: no Dockerfile build, whose every
# instruction would copy the whole rootfs on the vfs driver). Chosen over debootstrap + apt in a
# rootfs: no download, no package scripts, about 4 s for a first build (87 MB) and 0.03 s to
# find it up to date (rig_pg_inputs_hash: a host upgrade of any package rebuilds it), and the
# server in the image is exactly the one the host-side tests run.

set -euo pipefail

RIG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RIG_STATE_DIR="$RIG_REPO/.test-rig"
RIG_BASE_IMAGE="coolify-migrate-test/base:latest"
RIG_APP_REPO="ghcr.io/coollabsio/coolify"
RIG_HEALTHY_VERSIONS=(3.12.32 3.12.33 3.12.35 3.12.36)
RIG_SVC_REPO="coolify-migrate-test/svc"
RIG_SVC_VERSIONS=(1.0.0 2.0.0 3.0.0)
RIG_SVC_NEVER_HEALTHY=3.0.0
RIG_NEVER_HEALTHY_VERSION=3.12.37
RIG_LABEL="org.coolify-migrate.test.context"
RIG_TMP_PREFIX="/tmp/cm-rig."  # short: the socket path must fit in 108 bytes
RIG_PG_MAJOR=15
RIG_PG_IMAGE="coolify-migrate-test/postgres:$RIG_PG_MAJOR"
# Stand-ins for redash/redash (tests/docker/test_redash_compose.py): release and alembic head.
RIG_REDASH_REPO="coolify-migrate-test/redash"
RIG_REDASH_RELEASES=(8.0.0.b32245:e5c7a4e2df4d 10.1.0.b50633:89bc7873a3e0 25.1.0:9e8c841d1a30)
RIG_REDASH_BROKEN=25.1.0  # also built as <tag>-broken: its last migration fails half-way

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

# Static busybox with its applet links, /tmp and /root, into the rootfs at $1.
# Every step checks its own status: callers run this under `||`, where `set -e` does not apply.
rig_stage_busybox() {
    local root=$1 bb applet dir
    bb=$(command -v busybox || true)
    if [ -z "$bb" ]; then
        rig_log "the test images need busybox-static on this host (apt-get install busybox-static)"
        return 1
    fi
    if ldd "$bb" >/dev/null 2>&1; then
        rig_log "$bb is dynamically linked; install busybox-static"
        return 1
    fi
    mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" || return 1
    chmod 1777 "$root/tmp" || return 1
    cp -L "$bb" "$root/bin/busybox" || return 1
    for applet in $("$bb" --list-full); do
        [ "$applet" = bin/busybox ] && continue
        dir=.
        case $applet in */*) dir=${applet%/*} ;; esac
        # One process per applet, not three: this loop is most of the time an up-to-date run takes.
        if [ ! -d "$root/$dir" ]; then
            mkdir -p "$root/$dir" || return 1
        fi
        ln -sf /bin/busybox "$root/$applet" || return 1
    done
}

# Every shared library (and the dynamic loader) ldd lists for the programs $2..., copied into the
# rootfs at $1 under the same paths.
rig_copy_libs() {
    local root=$1 lib libs
    shift
    libs=$(for f in "$@"; do
        ldd "$f" || exit 1
    done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u) ||
        return 1
    for lib in $libs; do
        mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib" || return 1
    done
}

# The base rootfs: static busybox with its applet links, plus the host's sqlite3 and every shared
# library (and the dynamic loader) ldd lists for it, so `sqlite3` runs inside.
rig_stage_rootfs() {
    local root=$1 sq
    sq=$(command -v sqlite3 || true)
    if [ -z "$sq" ]; then
        rig_log "the test images need sqlite3 on this host (apt-get install sqlite3)"
        return 1
    fi
    rig_stage_busybox "$root" || return 1
    mkdir -p "$root/app" "$root/usr/bin" || return 1
    cp -L "$sq" "$root/usr/bin/sqlite3" || return 1
    rig_copy_libs "$root" "$root/usr/bin/sqlite3" || return 1
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd" || return 1
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group" || return 1
}

# The PostgreSQL image's rootfs at $1, from the host's PostgreSQL $RIG_PG_MAJOR (see the top).
rig_stage_pg_rootfs() {
    local root=$1 src="$RIG_REPO/tests/docker/images/postgres"
    local lib="usr/lib/postgresql/$RIG_PG_MAJOR" share="usr/share/postgresql/$RIG_PG_MAJOR" f
    local elves=()
    if [ ! -x "/$lib/bin/postgres" ] || [ ! -x "/$lib/bin/pg_dump" ] || [ ! -d "/$share" ]; then
        rig_log "the PostgreSQL image needs PostgreSQL $RIG_PG_MAJOR on this host" \
            "(apt-get install postgresql-$RIG_PG_MAJOR postgresql-client-$RIG_PG_MAJOR)"
        return 1
    fi
    rig_stage_busybox "$root" || return 1
    mkdir -p "$root/usr/local/bin" "$root/var/lib/postgresql/data" "$root/var/run/postgresql" ||
        return 1
    # Without the LLVM JIT (llvmjit.so needs libLLVM, about 100 MB; the server runs with jit=off),
    # man pages and the extension build kit. zoneinfo: Debian builds it --with-system-tzdata.
    # right/: the leap-second variants of every zone, which nobody sets as TimeZone.
    tar -C / --exclude="$lib/lib/bitcode" --exclude="$lib/lib/llvmjit*" --exclude="$lib/lib/pgxs" \
        --exclude="$share/man" --exclude=usr/share/zoneinfo/right \
        -cf - "$lib" "$share" usr/share/zoneinfo | tar -C "$root" -xf - || return 1
    while IFS= read -r -d '' f; do
        if cmp -s -n 4 "$f" <(printf '\177ELF'); then
            elves+=("$f")
        fi
    done < <(find "$root/$lib/bin" "$root/$lib/lib" -type f \( -perm -u+x -o -name '*.so' \) \
        -print0)
    [ "${#elves[@]}" -gt 0 ] || return 1
    # initdb runs `locale -a` to import the system's collations: glibc's C.utf8, nothing more.
    if [ -x /usr/bin/locale ] && [ -d /usr/lib/locale/C.utf8 ]; then
        mkdir -p "$root/usr/bin" "$root/usr/lib/locale" &&
            cp -L /usr/bin/locale "$root/usr/bin/locale" &&
            cp -R /usr/lib/locale/C.utf8 "$root/usr/lib/locale/" || return 1
        elves+=("$root/usr/bin/locale")
    fi
    rig_copy_libs "$root" "${elves[@]}" || return 1
    cp "$src/docker-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh" || return 1
    chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh" || return 1
    # uid/gid 999, as in the official image, so a volume's ownership means the same in both.
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd" || return 1
    printf '%s\n' 'root:x:0:' 'postgres:x:999:' 'nogroup:x:65534:' >"$root/etc/group" || return 1
    printf '%s\n' 'passwd: files' 'group: files' 'hosts: files' >"$root/etc/nsswitch.conf" ||
        return 1
}

# rig_tar for the PostgreSQL rootfs at $1: root owns everything but the server's directories,
# which belong to postgres (999) as in the official image, so `--user postgres` works and a new
# volume mounted on PGDATA starts out as postgres's.
rig_pg_tar() {
    local root=$1 out=$2 own=(./var/lib/postgresql ./var/run/postgresql)
    chmod 0700 "$root/var/lib/postgresql/data" && chmod 2775 "$root/var/run/postgresql" &&
        tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" \
            --exclude="${own[0]}" --exclude="${own[1]}" -cf "$out" . &&
        tar --sort=name --mtime=@0 --owner=999 --group=999 --numeric-owner -C "$root" \
            -rf "$out" "${own[@]}"
}

# What the PostgreSQL image is made of, without staging it: the code that stages it, its files,
# and the exact version of every Debian package on the host (the rootfs holds nothing but
# files of those packages and of the staging code). Staging alone takes seconds; this, 0.1 s.
# Fails without dpkg-query; rig_build_pg_image then hashes the staged rootfs instead.
rig_pg_inputs_hash() {
    local src="$RIG_REPO/tests/docker/images/postgres"
    command -v dpkg-query >/dev/null || return 1
    {
        echo "PostgreSQL $RIG_PG_MAJOR"
        declare -f rig_stage_busybox rig_copy_libs rig_stage_pg_rootfs rig_pg_tar
        cat "$src/docker-entrypoint.sh" "$src/image.changes"
        dpkg-query -W -f '${Package}:${Architecture} ${Version} ${db:Status-Abbrev}\n' |
            LC_ALL=C sort
        stat -L -c '%n %s %Y' "/usr/lib/postgresql/$RIG_PG_MAJOR/bin/postgres" \
            "$(command -v busybox)"
    } | sha256sum | cut -c1-64
}

# Import coolify-migrate-test/postgres:15 unless the tag already carries the hash of what it is
# made of (rig_pg_inputs_hash, or where that fails the hash of the staged rootfs and settings).
# Sets RIG_PG_BUILT to 1 when it imported, 0 when the image was up to date.
rig_build_pg_image() {
    local stage=$1 changes_file="$RIG_REPO/tests/docker/images/postgres/image.changes"
    local inputs current hash label line changes=()
    RIG_PG_BUILT=0
    inputs=$(rig_pg_inputs_hash 2>/dev/null) || inputs=
    current=$(rig_label_of "$RIG_PG_IMAGE")
    if [ -n "$inputs" ] && [ "$current" = "inputs-$inputs" ]; then
        return 0
    fi
    rig_stage_pg_rootfs "$stage/pg-rootfs" || return 1
    hash=$({
        rig_pg_tar "$stage/pg-rootfs" "$stage/pg-rootfs.tar" || exit 1
        sha256sum <"$stage/pg-rootfs.tar"
        sha256sum <"$changes_file"
    } | sha256sum | cut -c1-64) || return 1
    label="rootfs-$hash"
    [ -n "$inputs" ] && label="inputs-$inputs"
    if [ "$current" = "$label" ]; then
        return 0
    fi
    while IFS= read -r line; do
        case $line in '' | '#'*) continue ;; esac
        changes+=(--change "$line")
    done <"$changes_file" || return 1
    docker import "${changes[@]}" --change "LABEL $RIG_LABEL=$label" \
        --change "LABEL org.coolify-migrate.test.rootfs=$hash" \
        "$stage/pg-rootfs.tar" "$RIG_PG_IMAGE" >/dev/null || return 1
    RIG_PG_BUILT=1
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
    # The stand-in Compose app (tests/docker/test_runtime_contract.py): 1.0.0 and 2.0.0 become
    # healthy, 3.0.0 never does.
    mkdir "$stage/svc" || return 1
    cp "$src/svc/Dockerfile" "$src/svc/svc.sh" "$stage/svc/" || return 1
    chmod 0644 "$stage/svc/Dockerfile" && chmod 0755 "$stage/svc/svc.sh" || return 1
    ctx_hash=$({
        echo "$base_id"
        rig_tar "$stage/svc" | sha256sum
    } | sha256sum | cut -c1-64) || return 1
    for version in "${RIG_SVC_VERSIONS[@]}"; do
        healthy=1
        [ "$version" = "$RIG_SVC_NEVER_HEALTHY" ] && healthy=0
        hash=$(printf '%s %s %s\n' "$ctx_hash" "$version" "$healthy" | sha256sum | cut -c1-64)
        tag="$RIG_SVC_REPO:$version"
        if [ "$(rig_label_of "$tag")" = "$hash" ]; then
            fresh=$((fresh + 1))
            continue
        fi
        if ! log=$(DOCKER_BUILDKIT=0 docker build --network none \
            --build-arg "BASE=$RIG_BASE_IMAGE" --build-arg "VERSION=$version" \
            --build-arg "HEALTHY=$healthy" --build-arg "CONTEXT_HASH=$hash" \
            -t "$tag" "$stage/svc" 2>&1); then
            printf '%s\n' "$log" >&2
            rig_log "building $tag failed"
            return 1
        fi
        built=$((built + 1))
    done
    rig_build_pg_image "$stage" || return 1
    if [ "$RIG_PG_BUILT" = 1 ]; then
        built=$((built + 1))
    else
        fresh=$((fresh + 1))
    fi
    rig_build_redash_images "$stage" || return 1
    built=$((built + RIG_REDASH_BUILT))
    fresh=$((fresh + RIG_REDASH_FRESH))
    rig_log "test images: $built built, $fresh already up to date"
}

# coolify-migrate-test/redash:<tag> for each of RIG_REDASH_RELEASES (and <tag>-broken), FROM the
# PostgreSQL image (psql); the tests tag them redash/redash:<tag> on the rig's engine.
rig_build_redash_images() {
    local stage=$1 src="$RIG_REPO/tests/docker/images/redash" pg_id ctx_hash item version head
    local broken hash tag log
    RIG_REDASH_BUILT=0 RIG_REDASH_FRESH=0
    mkdir -p "$stage/redash/migrations" || return 1
    cp "$src/Dockerfile" "$src/redash.sh" "$src/schema.sql" "$stage/redash/" || return 1
    cp "$src"/migrations/*.sql "$stage/redash/migrations/" || return 1
    chmod 0644 "$stage/redash/Dockerfile" "$stage/redash/schema.sql" \
        "$stage/redash/migrations/"*.sql || return 1
    chmod 0755 "$stage/redash/redash.sh" || return 1
    pg_id=$(docker image inspect -f '{{.Id}}' "$RIG_PG_IMAGE") || return 1
    ctx_hash=$({
        echo "$pg_id"
        rig_tar "$stage/redash" | sha256sum
    } | sha256sum | cut -c1-64) || return 1
    for item in "${RIG_REDASH_RELEASES[@]}" "$RIG_REDASH_BROKEN:broken"; do
        version=${item%%:*} head=${item#*:} broken=0 tag="$RIG_REDASH_REPO:${item%%:*}"
        if [ "$head" = broken ]; then
            broken=1 tag="$tag-broken"
            for head in "${RIG_REDASH_RELEASES[@]}"; do
                [ "${head%%:*}" = "$version" ] && break
            done
            head=${head#*:}
        fi
        hash=$(printf '%s %s %s %s\n' "$ctx_hash" "$version" "$head" "$broken" | sha256sum | cut -c1-64)
        if [ "$(rig_label_of "$tag")" = "$hash" ]; then
            RIG_REDASH_FRESH=$((RIG_REDASH_FRESH + 1))
            continue
        fi
        if ! log=$(DOCKER_BUILDKIT=0 docker build --network none \
            --build-arg "BASE=$RIG_PG_IMAGE" --build-arg "VERSION=$version" \
            --build-arg "HEAD=$head" --build-arg "BROKEN=$broken" \
            --build-arg "CONTEXT_HASH=$hash" -t "$tag" "$stage/redash" 2>&1); then
            printf '%s\n' "$log" >&2
            rig_log "building $tag failed"
            return 1
        fi
        RIG_REDASH_BUILT=$((RIG_REDASH_BUILT + 1))
    done
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
