#!/usr/bin/env bash
# Stage 3 of the image: configure a copy of the root filesystem, install the gateway, and lay
# out the SD-card image. No loop devices and no mounts: the ext4 root is made from a directory
# (mkfs.ext4 -d), the FAT boot partition with mtools, the partition table with sfdisk on the
# image file, and both partitions are copied in with dd.
#
# Usage: assemble.sh ROOTFS_TARBALL WHEELS_DIR OUTPUT.img
set -euo pipefail
source "$(dirname "$0")/lib.sh"
rootfs_tar=$1
wheels=$2
output=$3

BOOT_MIB=256          # firmware, kernel, initrd and device trees take about 90 MiB
ALIGN_MIB=4           # the first partition starts 4 MiB in (erase-block aligned)
BOOT_LABEL=GW-BOOT    # also the label cloud-init looks for (fs_label: gw-boot)
ROOT_LABEL=gw-root

work=$(mktemp -d "${TMPDIR:-/var/tmp}/edge-gateway-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

log "unpacking the root filesystem"
unpack_rootfs "$rootfs_tar" "$root"

log "installing the overlay and the gateway"
cp -a --no-preserve=ownership "$IMAGE_DIR/overlay/." "$root/"
mkdir -p "$root/var/tmp/wheels"
cp "$wheels"/*.whl "$root/var/tmp/wheels/"
cp "$IMAGE_DIR/configure-rootfs.sh" "$root/var/tmp/"
chroot_run "$root" sh -c 'python3 -m venv /opt/edge-gateway \
    && /opt/edge-gateway/bin/pip install --quiet --no-index --find-links /var/tmp/wheels "edge-gateway[pi]" \
    && /opt/edge-gateway/bin/gateway version \
    && /opt/edge-gateway/bin/python -c "import gateway._native, lgpio" \
    && /var/tmp/configure-rootfs.sh'
rm -rf "$root/var/tmp/wheels" "$root/var/tmp/configure-rootfs.sh"

# Root by PARTUUID: the disk identifier is fixed here, so cmdline.txt and fstab agree.
disk_id=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
cat >"$root/etc/fstab" <<FSTAB
# For the card's wear (docs/store.md, "What a power cut can cost"): noatime, no write for every read;
# lazytime, a write's mtime kept in memory (on the card with the inode's next change, fsync,
# or a day), so a WAL sync into its preallocated segment is not followed by a journal commit
# of its timestamp; commit=60, the ext4 journal committed every 60 s, not 5 s, so the
# system's small writes share one commit. What is fsync'd (the gateway's acknowledged points,
# its local_sync) is on the card when the call returns, whatever the interval; what is not
# (logs between journald's syncs, timesyncd's clock file) may lose up to 60 s at a power cut.
# /tmp in memory. No swap.
PARTUUID=$disk_id-02  /               ext4   defaults,noatime,lazytime,commit=60       0 1
PARTUUID=$disk_id-01  /boot/firmware  vfat   defaults,noatime,umask=0077,nofail        0 2
tmpfs                 /tmp            tmpfs  defaults,noatime,nosuid,nodev,size=20%,mode=1777 0 0
FSTAB

log "collecting the boot partition"
boot="$work/boot"
mkdir -p "$boot"
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
version=${kernel##*/vmlinuz-}
[ -f "$root/boot/initrd.img-$version" ] || die "no initrd for kernel $version in the root filesystem"
cp "$kernel" "$boot/vmlinuz"
cp "$root/boot/initrd.img-$version" "$boot/initrd.img"
cp "$root"/usr/lib/raspi-firmware/* "$boot/"
cp "$root"/usr/lib/linux-image-"$version"/broadcom/bcm27*-rpi-*.dtb "$boot/"
cp "$IMAGE_DIR/boot/config.txt" "$boot/config.txt"
echo "console=tty1 console=ttyS1,115200 root=PARTUUID=$disk_id-02 rootfstype=ext4 rootwait fsck.repair=yes net.ifnames=0 cma=64M quiet" \
    >"$boot/cmdline.txt"
cp "$REPO_DIR"/cloud-init/seed/{user-data,meta-data,network-config} "$boot/"
# The mount point stays empty on the root filesystem; raspi-firmware's hooks wrote their copy there.
find "$root/boot/firmware" -mindepth 1 -delete

log "making the file systems"
root_used_mib=$(du -s --block-size=1M "$root" | cut -f1)
root_mib=$(( (root_used_mib * 5 / 4 + 300 + 3) / 4 * 4 ))  # room for the first boot; grows later
mkfs.vfat -F 32 -n "$BOOT_LABEL" -C "$work/boot.img" $((BOOT_MIB * 1024)) >/dev/null
mcopy -s -i "$work/boot.img" "$boot"/* ::/
mkfs.ext4 -q -L "$ROOT_LABEL" -d "$root" "$work/root.img" "${root_mib}M"

log "laying out the image: boot ${BOOT_MIB} MiB, root ${root_mib} MiB"
total_mib=$((ALIGN_MIB + BOOT_MIB + root_mib))
rm -f "$output"
truncate -s "${total_mib}M" "$output"
sfdisk --quiet "$output" <<LAYOUT
label: dos
label-id: 0x$disk_id
start=${ALIGN_MIB}MiB, size=${BOOT_MIB}MiB, type=c, bootable
start=$((ALIGN_MIB + BOOT_MIB))MiB, type=83
LAYOUT
dd if="$work/boot.img" of="$output" bs=1M seek="$ALIGN_MIB" conv=notrunc,sparse status=none
dd if="$work/root.img" of="$output" bs=1M seek="$((ALIGN_MIB + BOOT_MIB))" conv=notrunc,sparse status=none
log "image laid out: $output (${total_mib} MiB)"
