#!/bin/sh
# /init of the cgroup v2 test VM (busybox sh, PID 1).  Installed by run.sh.
#
# Stage 1 runs in the initramfs (rootfs), where pivot_root(2) is impossible,
# so container runtimes would fail: copy everything onto a tmpfs and
# switch_root into it.  Stage 2 sets up a pure cgroup v2 system, runs the
# test script (and the berthd scenario, if run.sh put it in) and powers off.  Never returns (a PID 1 exit would panic;
# with panic=-1 and qemu -no-reboot that also ends the VM).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

if [ ! -e /.stage2 ]; then
	mount -t tmpfs -o mode=0755 tmpfs /newroot
	for f in /* /.[!.]*; do
		case $f in /newroot | '/.[!.]*') continue ;; esac
		cp -a "$f" /newroot/
	done
	: >/newroot/.stage2
	exec switch_root /newroot /init
	echo "BERTH-VM-ERROR: switch_root failed"
	poweroff -f
fi

# ---- stage 2: on a tmpfs root
echo # the firmware leaves escape sequences on the console's current line
mount -t proc -o nosuid,nodev,noexec proc /proc
read -r T_STAGE2 _ </proc/uptime
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts -o nosuid,noexec,newinstance,ptmxmode=0666 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs /run
# pure cgroup v2, with every controller enabled for the children of the root
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup
echo 1 >/proc/sys/kernel/printk # keep kernel chatter off the result lines
hostname berth-vm

. /etc/berth-vm.env
# kernel modules, in dependency order (paths are relative to /lib/modules)
if [ -s /lib/modules/load-order ]; then
	while read -r m; do
		insmod "/lib/modules/$m" || echo "BERTH-VM-INFO: insmod $m failed"
	done </lib/modules/load-order
fi
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control ||
		echo "BERTH-VM-INFO: could not enable controller $c"
done

accel=tcg
grep -q kvm-clock /sys/devices/system/clocksource/clocksource0/available_clocksource 2>/dev/null && accel=kvm
echo "BERTH-VM-INFO: booted in $(cut -d' ' -f1 /proc/uptime)s (guest clock; stage 2 began at ${T_STAGE2}s), accel=$accel, $(nproc) cpus"
sh /guest-tests.sh 2>&1
rc=$?
# the berthd scenario (run.sh BERTHD=...): its own BERTH-VM-RESULT line
if [ -f /guest-berthd.sh ]; then
	sh /guest-berthd.sh 2>&1
	rc2=$?
	[ $rc = 0 ] && rc=$rc2
fi
echo "BERTH-VM-INFO: tests done at $(cut -d' ' -f1 /proc/uptime)s (guest clock), exit status $rc"
sync
poweroff -f
sleep 5
