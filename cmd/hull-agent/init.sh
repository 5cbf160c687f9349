#!/bin/sh
# /init of Hull's microVM guest (busybox sh; hack/build-microvm.sh puts it in the initramfs).
#
# Stage 1 copies the initramfs into a tmpfs and switch_roots into it: runc cannot pivot_root out of the
# initramfs (rootfs is not a mount it may move), but it can out of a tmpfs. Stage 2 mounts what the agent and
# runc need, loads the virtio/9p modules, mounts the host's share and becomes hull-agent (PID 1).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

fail() {
    echo "hull-init: $*" >&2
    # PID 1 exiting panics the kernel; with panic=-1 and qemu -no-reboot the VM ends and the host reads this.
    exit 1
}

if [ ! -e /.hull-tmpfs-root ]; then
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 rootfs /newroot || fail "cannot mount the tmpfs root"
    for entry in /*; do
        case "$entry" in /newroot|/proc|/sys|/dev) continue ;; esac
        cp -a "$entry" /newroot/ || fail "cannot copy $entry to the tmpfs root"
    done
    mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/run /newroot/tmp
    touch /newroot/.hull-tmpfs-root
    exec switch_root /newroot /init
fi

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fail "cannot mount the cgroup2 hierarchy"

while read -r module; do
    insmod "/lib/modules/$module" || fail "cannot load module $module"
done </lib/modules/load-order

mkdir -p /run/hull/shared
# The host's share (tag "hull"): container rootfs and volumes appear under it as the host bind-mounts them.
# cache=mmap: no metadata caching, so what the host mounts later is seen at once, and binaries can be mmap'ed.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap,access=client hull /run/hull/shared ||
    fail "cannot mount the host share (9p tag hull)"

exec /sbin/hull-agent
