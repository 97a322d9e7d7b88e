#!/usr/bin/env bash
# Builds the SD-card image: dist/edge-gateway-<version>-arm64.img.zst and its .sha256.
#
#   1. rootfs.sh          Debian bookworm arm64 with the packages of packages.txt (cached tarball)
#   2. gateway-wheels.sh  the gateway (C core compiled for aarch64) and its dependencies as wheels
#   3. assemble.sh        configuration, the gateway's virtualenv, partitions, boot files
#
# Everything slow is cached under /var/cache/edge-gateway-image (EDGE_GATEWAY_IMAGE_CACHE), and
# a finished image is reused as long as none of its inputs changed. Needs root (mmdebstrap in
# root mode, chroot under qemu-user).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "building the image needs root (mmdebstrap, chroot under qemu-user)"
dist=${DIST_DIR:-$REPO_DIR/dist}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$REPO_DIR/gateway/__init__.py")
[ -n "$version" ] || die "no __version__ in gateway/__init__.py"
name="edge-gateway-$version-$ARCH.img"
started=$SECONDS

# One build at a time per cache: two at once shared the rootfs tarball and the cache's
# staging names, and one's clean-up of old images could remove the other's.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/build.lock"
if ! flock -n 9; then
    log "another image build uses $CACHE_DIR; waiting for it"
    flock 9
fi

rootfs_tar=$(bash "$IMAGE_DIR/rootfs.sh")

# Every input of the image: the root filesystem, this recipe, the default seed, the gateway.
inputs_key() {
    (echo "$rootfs_tar"
     cd "$REPO_DIR" && find image cloud-init/seed gateway native pyproject.toml setup.py README.md \
         -type f ! -name '*.so' ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 \
         | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}
image_key=$(inputs_key)
cached="$CACHE_DIR/images/$image_key"
if [ ! -s "$cached/$name.zst" ]; then
    work=$(mktemp -d "${TMPDIR:-/var/tmp}/edge-gateway-build.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    bash "$IMAGE_DIR/gateway-wheels.sh" "$rootfs_tar" "$work/wheels"
    bash "$IMAGE_DIR/assemble.sh" "$rootfs_tar" "$work/wheels" "$work/$name"
    log "compressing"
    zstd -q -T0 -"${ZSTD_LEVEL:-12}" "$work/$name" -o "$work/$name.zst"
    # An image made while its sources were being edited would be cached under the wrong key.
    [ "$(inputs_key)" = "$image_key" ] || die "the sources changed during the build; run it again"
    (cd "$work" && sha256sum "$name.zst" >"$name.zst.sha256")
    rm -rf "$cached.tmp" && mkdir -p "$cached.tmp"
    mv "$work/$name.zst" "$work/$name.zst.sha256" "$cached.tmp/"
    rm -rf "$cached" && mv "$cached.tmp" "$cached"
    # Keep the newest three images.
    ls -1dt "$CACHE_DIR"/images/*/ | tail -n +4 | xargs -r rm -rf
else
    log "image cached for these inputs: $cached"
fi

mkdir -p "$dist"
rm -f "$dist"/edge-gateway-*-"$ARCH".img.zst "$dist"/edge-gateway-*-"$ARCH".img.zst.sha256
cp "$cached/$name.zst" "$cached/$name.zst.sha256" "$dist/"
log "done in $((SECONDS - started)) s: $dist/$name.zst ($(du -h --apparent-size "$dist/$name.zst" | cut -f1))"
echo "$dist/$name.zst"
