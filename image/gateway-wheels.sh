#!/usr/bin/env bash
# Stage 2 of the image: the gateway and its Python dependencies as arm64 wheels.
#
# - The dependencies (pyproject's [project] dependencies) are resolved for CPython 3.11 on
#   aarch64 by pip on this machine, as binary wheels only, into a cache keyed on the list.
# - The gateway itself (pure Python plus the cffi C core) is built inside a builder: a copy of
#   the root filesystem with gcc and python3-dev added, run through qemu-user, so the C core is
#   compiled for aarch64 by Debian's own toolchain. The builder is cached beside the rootfs; the
#   wheel is cached on a hash of the sources.
#
# Usage: gateway-wheels.sh ROOTFS_TARBALL OUTPUT_DIR   (fills OUTPUT_DIR with every wheel)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rootfs_tar=$1
out=$2
mkdir -p "$out"

host_python=${HOST_PYTHON:-$REPO_DIR/.venv/bin/python}
[ -x "$host_python" ] || host_python=python3
"$host_python" -m pip --version >/dev/null 2>&1 || die "pip is needed on this machine ($host_python -m pip)"

requirements=$("$host_python" - "$REPO_DIR/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)
# The image is for a Pi: the "pi" extra (lgpio, for real GPIO) goes in too.
for req in (project["project"]["dependencies"] + project["project"]["optional-dependencies"]["pi"]
            + project["build-system"]["requires"]):
    print(req)
PY
)

# --- dependencies ------------------------------------------------------------------------------
deps_key=$(printf '%s\n' "$requirements" | sha256sum | cut -c1-16)
deps_dir="$CACHE_DIR/wheels/deps-cp311-aarch64-$deps_key"
if [ ! -d "$deps_dir" ]; then
    log "downloading arm64 wheels of the dependencies"
    rm -rf "$deps_dir.tmp"
    mapfile -t reqs <<<"$requirements"
    "$host_python" -m pip download --quiet --only-binary=:all: --dest "$deps_dir.tmp" \
        --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
        --platform manylinux_2_36_aarch64 --platform manylinux_2_34_aarch64 \
        --platform manylinux_2_28_aarch64 \
        --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --platform any \
        "${reqs[@]}" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    mv "$deps_dir.tmp" "$deps_dir"
fi
cp "$deps_dir"/*.whl "$out/"

# --- gateway -----------------------------------------------------------------------------------
# The sources that make the wheel: the package (without built modules and caches) and its build files.
sources=(pyproject.toml setup.py README.md gateway native/build_native.py native/src native/include)
source_list=$(cd "$REPO_DIR" && find "${sources[@]}" -type f ! -name '*.so' ! -name '*.pyc' \
              ! -path '*/__pycache__/*' 2>/dev/null | LC_ALL=C sort)
# A snapshot of the sources, taken once: the key is the hash of what gets built, even when the
# tree is edited during the build.
snapshot=$(mktemp -d "${TMPDIR:-/var/tmp}/edge-gateway-src.XXXXXX")
trap 'rm -rf "$snapshot"' EXIT
(cd "$REPO_DIR" && printf '%s\n' "$source_list" | tar --create --files-from=- --file=-) \
    | tar --extract --directory "$snapshot" --file=-
src_key=$( (cd "$snapshot" && printf '%s\n' "$source_list" | xargs -d '\n' sha256sum; \
            printf '%s\n' "$requirements") | sha256sum | cut -c1-16)
wheel_dir="$CACHE_DIR/wheels/gateway-$src_key"
if compgen -G "$wheel_dir/edge_gateway-*.whl" >/dev/null; then
    log "gateway wheel cached: $wheel_dir"
    cp "$wheel_dir"/edge_gateway-*.whl "$out/"
    exit 0
fi

rootfs_key=$(basename "$rootfs_tar" .tar)
builder_key=$(cat "$IMAGE_DIR/build-packages.txt" "$IMAGE_DIR/gateway-wheels.sh" | sha256sum | cut -c1-8)
builder="$CACHE_DIR/builder-${rootfs_key#rootfs-}-$builder_key"
if [ ! -d "$builder" ]; then
    log "making the arm64 builder (root filesystem + $(list_packages "$IMAGE_DIR/build-packages.txt" | xargs))"
    rm -rf "$builder.tmp"
    unpack_rootfs "$rootfs_tar" "$builder.tmp"
    rm -f "$builder.tmp/etc/resolv.conf"
    cp /etc/resolv.conf "$builder.tmp/etc/resolv.conf"
    mapfile -t build_packages < <(list_packages "$IMAGE_DIR/build-packages.txt")
    chroot_run "$builder.tmp" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null && apt-get clean' \
        sh "${build_packages[@]}"
    # The build's own virtualenv: cffi, setuptools and wheel at the versions pyproject asks for.
    mkdir -p "$builder.tmp/build/wheels"
    cp "$deps_dir"/*.whl "$builder.tmp/build/wheels/"
    chroot_run "$builder.tmp" sh -c 'python3 -m venv /build/venv && /build/venv/bin/pip install \
        --quiet --no-index --find-links /build/wheels cffi setuptools wheel'
    mv "$builder.tmp" "$builder"
    # Builders of older root filesystems are of no further use.
    for old in "$CACHE_DIR"/builder-*; do
        [ "$old" = "$builder" ] || rm -rf "$old"
    done
fi

log "building the gateway wheel for arm64 (C core compiled under qemu-user)"
started=$SECONDS
rm -rf "$builder/build/src" "$builder/build/out"
mkdir -p "$builder/build/src" "$builder/build/out"
cp -a "$snapshot/." "$builder/build/src/"
chroot_run "$builder" sh -c 'cd /build/src && /build/venv/bin/pip wheel --quiet --no-deps \
    --no-build-isolation --no-index --wheel-dir /build/out .'
rm -rf "$wheel_dir.tmp" && mkdir -p "$wheel_dir.tmp"
cp "$builder"/build/out/edge_gateway-*.whl "$wheel_dir.tmp/"
rm -rf "$wheel_dir" && mv "$wheel_dir.tmp" "$wheel_dir"
log "gateway wheel built in $((SECONDS - started)) s: $(basename "$wheel_dir"/edge_gateway-*.whl)"
cp "$wheel_dir"/edge_gateway-*.whl "$out/"
