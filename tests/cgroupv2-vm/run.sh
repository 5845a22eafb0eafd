#!/usr/bin/env bash
# Boot Debian's linux-image-amd64 kernel under qemu with a small initramfs
# that gives a pure cgroup v2 system, run a test script there against an OCI
# runtime binary (runc's command line), and report the results.
#
# usage: run.sh RUNTIME_BINARY [TEST_SCRIPT]
#   RUNTIME_BINARY  e.g. /usr/sbin/runc or target/debug/berth-runtime
#   TEST_SCRIPT     guest script (busybox sh); default: guest-tests.sh here
# environment (all optional):
#   QEMU_TIMEOUT=300     hard limit for the VM, seconds
#   QEMU_MEM=1024        guest memory, MiB
#   QEMU_SMP=2           guest CPUs
#   VERBOSE=1            stream the guest console while it runs
#   SKIP_TESTS="e"       test groups (a b c d e) the guest skips
#   RT_TIMEOUT=20        seconds one runtime command may take in the guest
#   EXTRA_MODULES="bfq"  kernel modules to load in the guest besides overlay
#   INITRD_COMPRESS=none none | gzip (gzip -1)
#   NO_STRIP=1           do not strip debug info off the runtime binary copy
#   NO_PVH=1             boot the compressed bzImage instead of its vmlinux
#   QEMU_ACCEL=kvm|tcg   force the accelerator (default: probe, see below)
#   KERNEL_APPEND="..."  extra kernel command line (e.g. "loglevel=7")
#   BERTHD=PATH          also run the berthd scenario (guest-berthd.sh): this
#                        berthd, the berth-monitor next to it (BERTH_MONITOR=),
#                        a docker CLI (DOCKER_CLI=, default: `command -v docker`)
#                        and a busybox image; needs more guest memory (see below)
#   BERTHD_NET=bridge    the scenario's containers: on berthd's default bridge,
#                        or (none) --network none.  Either way the bridge, veth
#                        and nf_tables modules and the host's nft go into the
#                        initramfs: berthd makes its bridge and table at start
#   D_TIMEOUT=30         seconds one docker command may take in the guest
# exit status: 0 only if every guest script's result line was seen and together
# they report 0 failed, >=1 passed.
# Needs root (apt-get, mknod) but no network in the guest (-nic none).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { echo "usage: $0 RUNTIME_BINARY [TEST_SCRIPT]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
RUNTIME_BIN=$(readlink -f "$(command -v "$1" || echo "$1")")
TEST_SCRIPT=$(readlink -f "${2:-$HERE/guest-tests.sh}")
INIT_SCRIPT=$HERE/guest-init.sh
[ -x "$RUNTIME_BIN" ] && [ -f "$RUNTIME_BIN" ] || { echo "run.sh: $1: not an executable file" >&2; exit 2; }
[ -f "$TEST_SCRIPT" ] || { echo "run.sh: $TEST_SCRIPT: no such test script" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (apt-get, mknod)" >&2; exit 2; }
BERTHD_BIN=
if [ -n "${BERTHD:-}" ]; then
	BERTHD_BIN=$(readlink -f "$BERTHD")
	MONITOR_BIN=$(readlink -f "${BERTH_MONITOR:-$(dirname "$BERTHD_BIN")/berth-monitor}")
	DOCKER_BIN=$(readlink -f "${DOCKER_CLI:-$(command -v docker || echo docker)}")
	for b in "$BERTHD_BIN" "$MONITOR_BIN" "$DOCKER_BIN"; do
		[ -x "$b" ] && [ -f "$b" ] || { echo "run.sh: $b: not an executable file (BERTHD, BERTH_MONITOR, DOCKER_CLI)" >&2; exit 2; }
	done
	# berthd will not start without nft (its firewall table), whatever BERTHD_NET
	NFT_BIN=$(command -v nft) || { echo "run.sh: the berthd scenario needs nft on the host (nftables)" >&2; exit 2; }
	BERTHD_NET=${BERTHD_NET:-bridge}
	case $BERTHD_NET in
	bridge | none) ;;
	*) echo "run.sh: BERTHD_NET must be bridge or none" >&2; exit 2 ;;
	esac
fi

QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
# the berthd scenario's binaries (~120 MB) sit in the initramfs, in its tmpfs
# copy, and in the page cache of what runs; its containers need some too
QEMU_MEM=${QEMU_MEM:-$([ -n "$BERTHD_BIN" ] && echo 1536 || echo 1024)}
QEMU_SMP=${QEMU_SMP:-2}
INITRD_COMPRESS=${INITRD_COMPRESS:-none}

T_START=$EPOCHREALTIME
T_PHASE=$T_START
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
phase() { # phase NAME: report the time since the previous phase mark
	local now=$EPOCHREALTIME
	echo "run.sh: phase $1: $(elapsed "$T_PHASE" "$now")s"
	T_PHASE=$now
}

TMP=$(mktemp -d /tmp/berth-cgroupv2-vm.XXXXXX)
QEMU_PID=
TAIL_PID=
VMLINUX_PID=
TOTAL_SHOWN=
cleanup() {
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null || true # `timeout` passes it on to qemu
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	if [ -n "$TAIL_PID" ]; then kill "$TAIL_PID" 2>/dev/null || true; fi
	if [ -n "$VMLINUX_PID" ]; then kill "$VMLINUX_PID" 2>/dev/null || true; wait "$VMLINUX_PID" 2>/dev/null || true; fi
	rm -rf "$TMP"
	[ -n "$TOTAL_SHOWN" ] || echo "run.sh: total $(elapsed "$T_START" "$EPOCHREALTIME")s, FAILED"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------------ 1. packages
PKGS="linux-image-amd64 qemu-system-x86 busybox-static cpio kmod xz-utils"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "run.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# INITRD=No: no host initrd for the new kernel (we build our own; saves time)
	apt_install() { INITRD=No apt-get install -y -qq --no-install-recommends $missing >"$TMP/apt.log" 2>&1; }
	if ! apt_install; then
		apt-get update -qq >"$TMP/apt.log" 2>&1 || true
		apt_install || { cat "$TMP/apt.log" >&2; echo "run.sh: apt-get install failed" >&2; exit 1; }
	fi
fi
# the kernel version linux-image-amd64 depends on (not the running kernel's)
KVER=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | sed -n 's/^linux-image-\([^ ,|]*\).*/\1/p')
KERNEL=/boot/vmlinuz-$KVER
MODDIR=/lib/modules/$KVER
[ -n "$KVER" ] && [ -r "$KERNEL" ] && [ -d "$MODDIR" ] || { echo "run.sh: kernel $KVER not found ($KERNEL, $MODDIR)" >&2; exit 1; }
BUSYBOX=/bin/busybox
ldd "$BUSYBOX" >/dev/null 2>&1 && { echo "run.sh: $BUSYBOX is not static (busybox-static?)" >&2; exit 1; }
MODPROBE=$(command -v modprobe || echo /sbin/modprobe)
phase packages

# ------------------------------------------------------------------ 2. initramfs
# Meanwhile, in the background: the uncompressed kernel (vmlinux, an ELF with
# a PVH entry point).  qemu boots it directly, skipping the emulated
# decompression of the bzImage (~3 s under TCG, ~1 s here on the host).
# Falls back to the bzImage if anything is off; NO_PVH=1 forces that.
extract_vmlinux() { # extract_vmlinux BZIMAGE OUT
	local magic dec off
	[ -z "${NO_PVH:-}" ] && grep -q '^CONFIG_PVH=y' "/boot/config-$KVER" 2>/dev/null || return 1
	for fmt in xz zstd gzip; do
		case $fmt in
		xz) magic=$'\xfd7zXZ' dec="xz -dc --single-stream" ;;
		zstd) magic=$'\x28\xb5\x2f\xfd' dec="zstd -dcq" ;;
		gzip) magic=$'\x1f\x8b\x08' dec="gzip -dc" ;;
		esac
		command -v "${dec%% *}" >/dev/null || continue
		for off in $(LC_ALL=C grep -abo "$magic" "$1" | cut -d: -f1 | head -n3); do
			tail -c +$((off + 1)) "$1" | $dec >"$2" 2>/dev/null || true
			[ "$(head -c4 "$2")" = $'\x7fELF' ] && return 0
		done
	done
	rm -f "$2"
	return 1
}
extract_vmlinux "$KERNEL" "$TMP/vmlinux" &
VMLINUX_PID=$!

R=$TMP/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proc,sys,dev,tmp,run,newroot,etc,lib/modules,bundle/rootfs}
install_busybox() { # install_busybox ROOT: static busybox + applet links
	mkdir -p "$1"/{bin,sbin,usr/bin,usr/sbin}
	cp "$BUSYBOX" "$1/bin/busybox"
	"$BUSYBOX" --list-full | while read -r a; do
		[ -e "$1/$a" ] || ln -s /bin/busybox "$1/$a"
	done
}
install_busybox "$R"
install_busybox "$R/bundle/rootfs"
mkdir -p "$R/bundle/rootfs"/{proc,sys,dev,tmp,etc,root}
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

# install_bin BINARY DEST [STRIP_FLAG]: a copy (debug info stripped, or as
# STRIP_FLAG says) with every shared library ldd lists + the loader
install_bin() {
	mkdir -p "$R$(dirname "$2")"
	if [ -z "${NO_STRIP:-}" ] && command -v strip >/dev/null; then
		strip "${3:---strip-debug}" -o "$R$2" "$1"
	else
		cp "$1" "$R$2"
	fi
	chmod 755 "$R$2"
	if ldd "$1" >"$TMP/ldd.out" 2>&1; then
		awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$TMP/ldd.out" | sort -u |
			while read -r lib; do
				[ -e "$R$lib" ] && continue
				mkdir -p "$R$(dirname "$lib")"
				cp -L "$lib" "$R$lib"
			done
	fi
}
# the runtime under test
RT_NAME=$(basename "$RUNTIME_BIN")
install_bin "$RUNTIME_BIN" "/usr/local/bin/$RT_NAME"
MODULES="overlay ${EXTRA_MODULES:-}"
# the berthd scenario: daemon + monitor side by side, the docker CLI, nft,
# and a busybox rootfs tar to `docker import`.  Symbols go too (-23 MB: each
# MB of initramfs costs ~0.05 s of boot under TCG)
if [ -n "$BERTHD_BIN" ]; then
	install_bin "$BERTHD_BIN" /usr/local/bin/berthd --strip-all
	install_bin "$MONITOR_BIN" /usr/local/bin/berth-monitor --strip-all
	install_bin "$DOCKER_BIN" /usr/local/bin/docker --strip-all
	# berthd creates its default bridge and applies its nftables table at
	# start, whatever network the containers use (it has no --bridge none):
	# the bridge, veth pairs, the nft expressions of its table (ct, fib,
	# nat, masquerade) and nft itself
	install_bin "$NFT_BIN" /usr/sbin/nft
	MODULES="$MODULES bridge veth nf_tables nft_ct nft_fib_inet nft_chain_nat nft_nat nft_masq"
	# /bin/busybox is a placeholder: the guest bind-mounts its own (the debug
	# berthd's import of 2 MB more would take ~30 s under TCG)
	install_busybox "$TMP/image"
	: >"$TMP/image/bin/busybox"
	mkdir -p "$TMP/image"/{proc,sys,dev,tmp,etc,root,var,run}
	echo 'root:x:0:0:root:/root:/bin/sh' >"$TMP/image/etc/passwd"
	echo 'root:x:0:' >"$TMP/image/etc/group"
	mkdir -p "$R/berthd"
	tar -C "$TMP/image" --numeric-owner --owner=0 --group=0 -cf "$R/berthd/busybox.tar" .
	install -m 755 "$HERE/guest-berthd.sh" "$R/guest-berthd.sh"
fi

# kernel modules, in dependency order, decompressed (busybox insmod)
: >"$R/lib/modules/load-order"
for m in $MODULES; do
	"$MODPROBE" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' |
		while read -r ko; do
			rel=${ko#/lib/modules/}
			case $rel in
			*.ko.xz) rel=${rel%.xz}; dec="xz -dc" ;;
			*.ko.zst) rel=${rel%.zst}; dec="zstd -qdc" ;;
			*.ko.gz) rel=${rel%.gz}; dec="gzip -dc" ;;
			*) dec="cat" ;;
			esac
			grep -qxF "$rel" "$R/lib/modules/load-order" && continue
			mkdir -p "$R/lib/modules/$(dirname "$rel")"
			$dec "$ko" >"$R/lib/modules/$rel"
			echo "$rel" >>"$R/lib/modules/load-order"
		done
done
cp "$MODDIR"/modules.{dep,order,builtin} "$R/lib/modules/$KVER/" 2>/dev/null || true

install -m 755 "$INIT_SCRIPT" "$R/init"
install -m 755 "$TEST_SCRIPT" "$R/guest-tests.sh"
{ # sourced by the guest's /init
	echo "export RUNTIME='/usr/local/bin/$RT_NAME'"
	echo "export SKIP_TESTS='${SKIP_TESTS:-}'"
	[ -z "${RT_TIMEOUT:-}" ] || echo "export RT_TIMEOUT='$RT_TIMEOUT'"
	[ -z "$BERTHD_BIN" ] || echo "export NET_MODE='$BERTHD_NET' DEADLINE='$((QEMU_TIMEOUT - 15))'"
	[ -z "${D_TIMEOUT:-}" ] || echo "export D_TIMEOUT='$D_TIMEOUT'"
} >"$R/etc/berth-vm.env"

INITRD=$TMP/initrd.cpio
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet) >"$INITRD"
case $INITRD_COMPRESS in
none) ;;
gzip) gzip -1 "$INITRD" && INITRD=$INITRD.gz ;;
*) echo "run.sh: INITRD_COMPRESS must be none or gzip" >&2; exit 2 ;;
esac
echo "run.sh: kernel $KVER, initramfs $(du -k "$INITRD" | cut -f1) KiB ($INITRD_COMPRESS), runtime $RUNTIME_BIN"
[ -z "$BERTHD_BIN" ] || echo "run.sh: berthd scenario: $BERTHD_BIN, $MONITOR_BIN, $DOCKER_BIN, network $BERTHD_NET"
BOOT_KERNEL=$KERNEL
if wait "$VMLINUX_PID"; then BOOT_KERNEL=$TMP/vmlinux; fi
VMLINUX_PID=
echo "run.sh: booting $BOOT_KERNEL$([ "$BOOT_KERNEL" = "$KERNEL" ] || echo " (PVH, uncompressed $KERNEL)")"
phase initramfs

# ------------------------------------------------------------------ 3. boot + test
# KVM only if /dev/kvm is usable and the CPU advertises vmx/svm (on nested
# setups /dev/kvm can exist but hang or abort qemu); QEMU_ACCEL=kvm|tcg forces.
# Boot watchdog: a guest that has not printed its "booted" line within
# BOOT_GRACE seconds (KVM: KVM_GRACE) is killed; KVM is then retried under
# TCG, TCG is retried once.
ACCEL=${QEMU_ACCEL:-}
if [ -z "$ACCEL" ]; then
	ACCEL=tcg
	if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; fi
fi
BOOT_GRACE=${BOOT_GRACE:-60}
KVM_GRACE=${KVM_GRACE:-20}
LOG=$TMP/console.log
boot() { # boot tcg|kvm: start qemu in the background, QEMU_PID = its `timeout`
	local cpu=max
	[ "$1" = kvm ] && cpu=host
	: >"$LOG"
	timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 \
		-accel "$1" -cpu "$cpu" -smp "$QEMU_SMP" -m "$QEMU_MEM" \
		-nographic -nodefaults -serial stdio -no-reboot -nic none \
		-kernel "$BOOT_KERNEL" -initrd "$INITRD" \
		-append "console=ttyS0 panic=-1 quiet ${KERNEL_APPEND:-}" \
		</dev/null >"$LOG" 2>&1 &
	QEMU_PID=$!
	if [ -n "${VERBOSE:-}" ]; then
		tail -n +1 -f --pid="$QEMU_PID" "$LOG" &
		TAIL_PID=$!
	fi
}
reap() { # reap: wait for qemu, qrc = its exit status
	qrc=0
	wait "$QEMU_PID" || qrc=$?
	QEMU_PID=
	if [ -n "$TAIL_PID" ]; then wait "$TAIL_PID" 2>/dev/null || true; TAIL_PID=; fi
}
booted() { grep -qa 'BERTH-VM-INFO: booted' "$LOG"; }
attempt=1
while :; do
	echo "run.sh: booting the VM ($ACCEL, attempt $attempt)"
	boot "$ACCEL"
	grace=$BOOT_GRACE
	[ "$ACCEL" = kvm ] && grace=$KVM_GRACE
	t0=$SECONDS
	t0r=$EPOCHREALTIME
	while kill -0 "$QEMU_PID" 2>/dev/null && ! booted && [ $((SECONDS - t0)) -lt "$grace" ]; do
		sleep 0.2
	done
	if booted; then
		echo "run.sh: guest reached its cgroup v2 shell $(elapsed "$t0r" "$EPOCHREALTIME")s after qemu started"
		reap
		break
	fi
	why="qemu exited"
	kill -0 "$QEMU_PID" 2>/dev/null && why="no \"booted\" line within ${grace}s"
	kill "$QEMU_PID" 2>/dev/null || true
	reap
	echo "run.sh: the $ACCEL guest did not boot ($why, qemu status $qrc); its console ended with:"
	tr -d '\r' <"$LOG" | tail -n 15 | sed 's/^/  | /'
	if [ "$ACCEL" = kvm ]; then
		ACCEL=tcg
	elif [ $attempt -ge 2 ]; then
		break
	fi
	attempt=$((attempt + 1))
done
phase vm
[ $qrc = 124 ] && echo "run.sh: VM killed after ${QEMU_TIMEOUT}s timeout"

# ------------------------------------------------------------------ 4. verdict
tr -d '\r' <"$LOG" >"$LOG.txt"
grep -a -E '^BERTH-VM-(INFO|TEST|ERROR):' "$LOG.txt" || true
# one result line per guest script (guest-tests.sh, then guest-berthd.sh):
# all of them must be there; the verdict is on their sum
NSCRIPTS=1
[ -z "$BERTHD_BIN" ] || NSCRIPTS=2
RESULT=
ok=no
grep -a -E '^BERTH-VM-RESULT: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$LOG.txt" >"$TMP/results" || true
if [ "$NSCRIPTS" -gt 1 ] && [ -s "$TMP/results" ]; then
	names=("$(basename "$TEST_SCRIPT")" guest-berthd.sh)
	i=0
	while read -r line; do
		echo "run.sh: ${names[$i]:-?}: ${line#BERTH-VM-RESULT: }"
		i=$((i + 1))
	done <"$TMP/results"
fi
if [ "$(wc -l <"$TMP/results")" = "$NSCRIPTS" ]; then
	RESULT=$(sed -E 's/^BERTH-VM-RESULT: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/' "$TMP/results" |
		awk '{ p += $1; f += $2; s += $3 } END { printf "BERTH-VM-RESULT: %d passed, %d failed, %d skipped\n", p, f, s }')
	npass=$(echo "$RESULT" | sed -E 's/^BERTH-VM-RESULT: ([0-9]+) passed.*/\1/')
	nfail=$(echo "$RESULT" | sed -E 's/^BERTH-VM-RESULT: [0-9]+ passed, ([0-9]+) failed.*/\1/')
	[ "$nfail" = 0 ] && [ "$npass" -ge 1 ] && ok=yes
elif [ -s "$TMP/results" ]; then
	echo "run.sh: $(wc -l <"$TMP/results") result line(s) from the guest, want $NSCRIPTS"
	RESULT="BERTH-VM-RESULT: 0 passed, 1 failed (a guest script gave no result line)"
fi
if [ $ok = no ]; then
	echo "run.sh: ---- guest console (qemu exit status $qrc) ----"
	cat "$LOG.txt"
	echo "run.sh: ---- end of guest console ----"
fi
echo "run.sh: total $(elapsed "$T_START" "$EPOCHREALTIME")s, $([ $ok = yes ] && echo OK || echo FAILED)"
TOTAL_SHOWN=1
echo "${RESULT:-BERTH-VM-RESULT: 0 passed, 1 failed (no result line from the guest)}"
[ $ok = yes ]
