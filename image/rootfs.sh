#!/usr/bin/env bash
# Stage 1 of the image: the Debian root filesystem with every package of packages.txt installed,
# as a tarball in the cache. This is the slow part (dpkg under qemu-user emulation, about 20 min
# cold on 2 cores), so it holds only packages: configuration is applied later, in assemble.sh.
# The tarball is keyed on the package list, this script and the mirror; downloaded .debs are kept
# too, so a changed package list downloads only what is new.
# The initramfs is made once, at the end: under emulation one mkinitramfs takes minutes, and the
# kernel's postinst and the triggers of later packages would otherwise make it two or three times.
# Prints the path of the tarball.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "the root filesystem is built with mmdebstrap in root mode: run as root"
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (see deps/debian-image.txt)"
ensure_binfmt

read -r main_uri security_uri < <(debian_mirrors)
key=$(printf '%s\n' "$main_uri" "$security_uri" | cat - "$IMAGE_DIR/packages.txt" "$IMAGE_DIR/rootfs.sh" \
      | sha256sum | cut -c1-16)
tarball="$CACHE_DIR/rootfs-$SUITE-$ARCH-$key.tar"
if [ -s "$tarball" ]; then
    log "root filesystem cached: $tarball"
    echo "$tarball"
    exit 0
fi

mkdir -p "$CACHE_DIR/debs"
components="main non-free-firmware"
sources=("deb $main_uri $SUITE $components" "deb $main_uri $SUITE-updates $components")
[ "$security_uri" = - ] || sources+=("deb $security_uri $SUITE-security $components")
mapfile -t packages < <(list_packages "$IMAGE_DIR/packages.txt")

log "building the root filesystem ($SUITE $ARCH, ${#packages[@]} packages) from $main_uri"
started=$SECONDS
export LC_ALL=C.UTF-8
mmdebstrap --mode=root --format=tar --variant=apt --architectures="$ARCH" \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --aptopt='Acquire::Languages "none"' \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --skip=essential/unlink \
    --setup-hook='mkdir -p "$1/var/cache/apt/archives" "$1/boot/firmware"' \
    --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs' \
    --essential-hook='printf "#!/bin/sh\nexit 0\n" >"$1/usr/sbin/update-initramfs" && chmod 0755 "$1/usr/sbin/update-initramfs"' \
    --setup-hook="sync-in $CACHE_DIR/debs /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $CACHE_DIR/debs" \
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/cache/apt/archives/partial/*' \
    --customize-hook='rm "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs' \
    --customize-hook='chroot "$1" update-initramfs -c -k all' \
    "$SUITE" "$tarball.tmp" "${sources[@]}"
mv "$tarball.tmp" "$tarball"
log "root filesystem built in $((SECONDS - started)) s: $tarball"

# Keep the newest two root filesystems; older ones only take disk space.
ls -1t "$CACHE_DIR"/rootfs-*.tar 2>/dev/null | tail -n +3 | xargs -r rm -f
echo "$tarball"
