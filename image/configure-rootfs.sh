#!/bin/sh
# Runs inside the arm64 root filesystem (chroot, qemu-user) after the overlay was copied in:
# users, groups, enabled units, and the removal of everything that must be unique per device.
set -eu
export LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive

getent group gpio >/dev/null || groupadd --system gpio
getent group i2c >/dev/null || groupadd --system i2c
if ! getent passwd gateway >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/gateway --no-create-home \
        --shell /usr/sbin/nologin --groups i2c,gpio --comment "edge gateway daemon" gateway
fi
install -d -m 0755 /etc/gateway
ln -sf /opt/edge-gateway/bin/gateway /usr/local/bin/gateway

systemctl enable gateway.service edge-gateway-mqtt-credentials.service mosquitto.service \
    ssh.service systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
    fake-hwclock.service fake-hwclock-save.timer \
    edge-gateway-provisioned.service edge-gateway-reprovision.service
# The card is written as little as possible: no daily package-list downloads (nothing would
# install them unattended anyway).
systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
systemctl mask systemd-networkd-wait-online.service
# e2scrub (e2fsprogs) checks ext4 on LVM snapshots: there is no LVM on the card, yet its boot-time
# reaper alone took 48 s of a boot under emulation. A power cut is recovered by the journal and
# fsck.repair=yes on the command line.
systemctl mask e2scrub_reap.service e2scrub_all.timer e2scrub_all.service

cat >/etc/hosts <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	edge-gateway
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
HOSTS

# Unique per device: made on first boot (machine-id by systemd, SSH host keys by cloud-init).
rm -f /etc/ssh/ssh_host_*
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id
# No swap on the card; nothing creates one, but a leftover file would be used by nobody.
rm -f /var/swap /swapfile
# Leftovers of the build.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old /var/log/*.log \
    /var/lib/cloud/* /tmp/* /root/.cache
find /var/log -type f -name '*.gz' -delete
