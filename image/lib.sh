# Shared helpers of the image build scripts (sourced, not run).
# shellcheck shell=bash

IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$IMAGE_DIR")
SUITE=bookworm
ARCH=arm64
# Caches live outside the repository so that a fresh clone on the same machine reuses them.
CACHE_DIR=${EDGE_GATEWAY_IMAGE_CACHE:-/var/cache/edge-gateway-image}

log() { printf '[image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

# Lines of a package list file without comments and blank lines, one package a line.
list_packages() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$1" | awk '{print $1}'
}

# The Debian mirror URIs this machine's apt already uses, printed as "main-uri security-uri"
# (security-uri may be "-"). Read at build time so no mirror name is written into the repository.
debian_mirrors() {
    local main="" security="" file
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for file in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] && files+=("$file")
    done
    [ ${#files[@]} -gt 0 ] || die "no apt sources found in /etc/apt/sources.list(.d)"
    # Emits "uri suite" pairs from both the one-line and the deb822 formats, binary entries only.
    local pairs
    pairs=$(awk '
        FNR == 1 { flush() }
        function flush(   u, s, nu, ns, i, j, U, S) {
            if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "") {
                nu = split(uris, U, " "); ns = split(suites, S, " ")
                for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print U[i], S[j]
            }
            types = ""; uris = ""; suites = ""
        }
        /^[[:space:]]*#/ { next }
        /^deb[[:space:]]/ {
            line = $0; sub(/\[[^]]*\]/, "", line); split(line, f, /[[:space:]]+/)
            print f[2], f[3]; next
        }
        /^[[:space:]]*$/ { flush(); next }
        /^Types:/  { sub(/^Types:[[:space:]]*/, "");  types = $0;  next }
        /^URIs:/   { sub(/^URIs:[[:space:]]*/, "");   uris = $0;   next }
        /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0; next }
        END { flush() }
    ' "${files[@]}")
    main=$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$pairs")
    security=$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$pairs")
    [ -n "$main" ] || die "no apt source for Debian $SUITE in /etc/apt/sources.list(.d); add one"
    echo "${main%/} ${security:--}"
}

# Makes sure arm64 binaries run here through qemu-user (binfmt_misc mounted, qemu-aarch64 enabled).
ensure_binfmt() {
    if [ "$(uname -m)" = aarch64 ]; then return 0; fi
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        log "mounting binfmt_misc"
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
            || die "cannot mount binfmt_misc (needs root or a privileged container)"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        log "enabling qemu-aarch64 in binfmt_misc"
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 \
            || update-binfmts --import qemu-aarch64 >/dev/null 2>&1 || true
    fi
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] \
        || die "qemu-aarch64 is not registered in binfmt_misc (install qemu-user-static and binfmt-support)"
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
        || echo 1 >/proc/sys/fs/binfmt_misc/qemu-aarch64
}

# sha256 of files and strings, used to key caches on what went into them.
hash_inputs() {
    sha256sum "$@" | awk '{print $1}' | sha256sum | cut -c1-16
}

# Runs a command inside the root filesystem DIR (arm64, through qemu-user) with /proc, /sys and
# /dev mounted in a private mount namespace: the mounts vanish with the command, even on a kill,
# and nothing of the host is touched.
chroot_run() {
    local dir=$1; shift
    unshare --mount --propagation private --pid --fork --kill-child -- /bin/sh -c '
        dir=$1; shift
        mount -t proc proc "$dir/proc" && mount -t sysfs sysfs "$dir/sys" \
            && mount --rbind /dev "$dir/dev" && mount -t tmpfs tmpfs "$dir/tmp" || exit 1
        exec chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            LC_ALL=C.UTF-8 "$@"' chroot_run "$dir" "$@"
}

# Unpacks a root filesystem tarball into DIR (owners, modes and xattrs kept).
unpack_rootfs() {
    mkdir -p "$2"
    tar --extract --file "$1" --directory "$2" --numeric-owner --xattrs --xattrs-include='*' \
        --preserve-permissions
}
