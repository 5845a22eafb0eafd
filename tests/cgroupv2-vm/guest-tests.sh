#!/bin/sh
# cgroup v2 tests for an OCI runtime with runc's command line.
# Runs INSIDE the test VM (busybox sh, pure cgroup v2 at /sys/fs/cgroup), as
# root, started by the VM's /init.  Environment:
#   RUNTIME          path of the runtime binary under test (required)
#   ROOTFS_TEMPLATE  busybox rootfs copied into each bundle (default /bundle/rootfs)
#   SKIP_TESTS       space-separated test groups to skip: a b c d e
#   RT_TIMEOUT       seconds one runtime command may take (default 20)
# Output (one line each, machine-parseable):
#   BERTH-VM-TEST: PASS <name>
#   BERTH-VM-TEST: FAIL <name>: <why>
#   BERTH-VM-TEST: SKIP <name>: <why>
#   BERTH-VM-INFO: <anything>                       (diagnostics)
#   BERTH-VM-RESULT: <N> passed, <M> failed, <K> skipped     (always last)
#
# Runtime commands used (runc syntax; --root before the command):
#   --version | run -d --bundle B ID | create --bundle B ID | start ID |
#   state ID | update --memory BYTES --pids-limit N ID | pause ID |
#   resume ID | kill ID KILL | delete ID | delete -f ID

RUNTIME=${RUNTIME:?RUNTIME not set}
ROOTFS_TEMPLATE=${ROOTFS_TEMPLATE:-/bundle/rootfs}
SKIP_TESTS=${SKIP_TESTS:-}
RT_TIMEOUT=${RT_TIMEOUT:-20}
STATE_ROOT=/run/berth-vm-test
WORK=/tmp/berth-vm-test
CG=/sys/fs/cgroup
CGPARENT=berth-vm-test
WAIT=30 # seconds, for every poll loop (TCG is slow)

PASSED=0
FAILED=0
SKIPPED=0

pass() { PASSED=$((PASSED + 1)); echo "BERTH-VM-TEST: PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "BERTH-VM-TEST: FAIL $1: $2"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "BERTH-VM-TEST: SKIP $1: $2"; }
info() { echo "BERTH-VM-INFO: $*"; }
up() { cut -d" " -f1 /proc/uptime; }   # guest clock, seconds
upi() { cut -d. -f1 /proc/uptime; }    # same, whole seconds
oneline() { tr '\n' ' ' | sed 's/  */ /g; s/ $//'; }
short() { oneline <"$1" 2>/dev/null | cut -c1-300; }
skipped() { case " $SKIP_TESTS " in *" $1 "*) return 0 ;; esac; return 1; }

# diag: what every user-space process is doing (after a runtime hang)
diag() {
	info "processes at $(up)s (pid ppid state comm wchan | stack):"
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		read -r st <"$d/stat" 2>/dev/null || continue
		# fields after "(comm)": state ppid ...; skip kernel threads
		set -- ${st##*) }
		[ "$p" = 2 ] || [ "$2" = 2 ] && continue
		info "  $p $2 $1 $(cat "$d/comm" 2>/dev/null) $(cat "$d/wchan" 2>/dev/null) | $(head -n4 "$d/stack" 2>/dev/null | sed 's/^\[<[0-9a-f]*>\] //' | oneline)"
	done
}

# rt OUT ARGS... : one runtime command, stdin /dev/null, stdout+stderr -> file
# OUT (a detached container inherits these fds: never give it a pipe of
# ours).  Killed (after a process dump) if it takes more than RT_TIMEOUT
# seconds.  Returns its exit status; sets RT_WHY for failure messages.
rt() {
	out=$1
	shift
	"$RUNTIME" --root "$STATE_ROOT" "$@" </dev/null >"$out" 2>&1 &
	rtpid=$!
	end=$(($(upi) + RT_TIMEOUT))
	# a finished child stays a zombie (state Z) until `wait`
	while [ "$(sed -n 's/.*) \(.\).*/\1/p' /proc/$rtpid/stat 2>/dev/null)" != Z ] && [ -e /proc/$rtpid ]; do
		if [ "$(upi)" -ge $end ]; then
			# stderr: rt may run inside $(...)
			{ info "'$*' still running after ${RT_TIMEOUT}s, killing it"; diag; } >&2
			kill -9 $rtpid 2>/dev/null
			break
		fi
		sleep 0.05
	done
	wait $rtpid
	rc=$?
	RT_WHY="'$*' failed (exit $rc): $(short "$out")"
	[ $rc = 137 ] && RT_WHY="'$*' hung (killed after ${RT_TIMEOUT}s); output: $(short "$out")"
	return $rc
}

# check NAME FILE EXPECTED : compare the first line of a cgroup file
check() {
	if [ ! -e "$2" ]; then
		fail "$1" "$2 does not exist"
		return
	fi
	got=$(head -n1 "$2")
	if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "$2 is '$got', want '$3'"; fi
}

# state ID FIELD : "status" or "pid" out of `RUNTIME state ID` (pretty or compact JSON)
state() {
	rt "$WORK/state.out" state "$1" || return 0
	tr -d '\n' <"$WORK/state.out" | case $2 in
	pid) sed -n 's/.*"pid"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' ;;
	*) sed -n 's/.*"'"$2"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' ;;
	esac
}

# wait_for CMD... : poll until CMD succeeds, at most $WAIT seconds
wait_for() {
	wend=$(($(upi) + WAIT))
	while :; do
		"$@" && return 0
		[ "$(upi)" -lt $wend ] || return 1
		sleep 0.1
	done
}
status_is() { [ "$(state "$1" status)" = "$2" ]; }
file_has() { grep -q "$2" "$1" 2>/dev/null; }
gone() { [ ! -e "$1" ]; }

# mk_bundle DIR ARGS_JSON CGROUPS_PATH RESOURCES_JSON
# Writes a runc-style bundle: DIR/rootfs (busybox) + DIR/config.json.
CAPS='"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"'
mk_bundle() {
	mkdir -p "$1"
	cp -a "$ROOTFS_TEMPLATE" "$1/rootfs"
	cat >"$1/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": $2,
    "env": [ "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root" ],
    "cwd": "/",
    "capabilities": {
      "bounding": [ $CAPS ],
      "effective": [ $CAPS ],
      "permitted": [ $CAPS ]
    },
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "berth-vm",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
      "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
      "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620" ] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
      "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs",
      "options": [ "nosuid", "noexec", "nodev", "ro" ] },
    { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
      "options": [ "nosuid", "noexec", "nodev", "relatime", "ro" ] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
      "options": [ "nosuid", "nodev", "mode=1777" ] }
  ],
  "linux": {
    "cgroupsPath": "$3",
    "resources": $4,
    "namespaces": [
      { "type": "pid" }, { "type": "ipc" }, { "type": "uts" },
      { "type": "mount" }, { "type": "network" }, { "type": "cgroup" }
    ]
  }
}
EOF
}

# ---------------------------------------------------------------- setup
mkdir -p "$WORK" "$STATE_ROOT"
rt "$WORK/version.out" --version
info "runtime $RUNTIME: $(short "$WORK/version.out")"
info "kernel $(uname -r), cgroup2 controllers: $(cat $CG/cgroup.controllers)"
info "root subtree_control: $(cat $CG/cgroup.subtree_control)"
if ! grep -q '^cgroup2 /sys/fs/cgroup cgroup2' /proc/mounts || grep -q ' cgroup ' /proc/mounts; then
	fail setup "/sys/fs/cgroup is not a pure cgroup v2 hierarchy"
fi
# the harness itself: overlayfs (module loaded by /init) must work here
mkdir -p "$WORK/ovl/l" "$WORK/ovl/u" "$WORK/ovl/w" "$WORK/ovl/m"
echo x >"$WORK/ovl/l/f"
if mount -t overlay overlay -o "lowerdir=$WORK/ovl/l,upperdir=$WORK/ovl/u,workdir=$WORK/ovl/w" "$WORK/ovl/m" 2>"$WORK/ovl.err" &&
	[ "$(cat "$WORK/ovl/m/f")" = x ]; then
	pass setup-overlayfs
	umount "$WORK/ovl/m"
else
	fail setup-overlayfs "cannot mount overlay: $(short "$WORK/ovl.err")"
fi
HAVE_IO=no
grep -qw io $CG/cgroup.controllers && HAVE_IO=yes

# ---------------------------------------------------------------- (a) limits
# run -d a container with resource limits, read them back from the cgroup
info "group (a) at $(up)s"
C1=c1
C1CG=$CG/$CGPARENT/$C1
C1_UP=no
if skipped a; then
	skip a "skipped by SKIP_TESTS (b c d need a)"
else
	IO_JSON=
	[ $HAVE_IO = yes ] && IO_JSON=',
    "blockIO": { "weight": 500 }'
	RES='{
    "memory": { "limit": 67108864 },
    "pids": { "limit": 32 },
    "cpu": { "quota": 50000, "period": 100000, "cpus": "0", "mems": "0" }'"$IO_JSON"'
  }'
	# The container reports what it sees (so no `exec` is needed), then idles.
	ARGS='[ "sh", "-c", "echo CGROUP=$(cat /proc/self/cgroup); echo MEMMAX=$(cat /sys/fs/cgroup/memory.max 2>&1); echo READY; exec sleep 600" ]'
	mk_bundle "$WORK/$C1" "$ARGS" "/$CGPARENT/$C1" "$RES"
	if ! rt "$WORK/$C1.out" run -d --bundle "$WORK/$C1" "$C1"; then
		fail a-run "$RT_WHY"
	elif ! wait_for file_has "$WORK/$C1.out" READY; then
		fail a-run "container never printed READY; output: $(short "$WORK/$C1.out"); state: $(state $C1 status)"
	else
		pass a-run
		C1_UP=yes
	fi
	if [ $C1_UP = yes ]; then
		st=$(state $C1 status)
		[ "$st" = running ] && pass a-state-running || fail a-state-running "state status is '$st', want running"
		pid=$(state $C1 pid)
		if [ -n "$pid" ] && grep -qx "$pid" "$C1CG/cgroup.procs" 2>/dev/null; then
			pass a-cgroup.procs
		else
			fail a-cgroup.procs "state pid '$pid' not in $C1CG/cgroup.procs ($(short "$C1CG/cgroup.procs"))"
		fi
		check a-memory.max "$C1CG/memory.max" 67108864
		check a-pids.max "$C1CG/pids.max" 32
		check a-cpu.max "$C1CG/cpu.max" "50000 100000"
		check a-cpuset.cpus "$C1CG/cpuset.cpus" 0
		check a-cpuset.mems "$C1CG/cpuset.mems" 0
		if [ $HAVE_IO = yes ]; then
			# runc/crun: io.bfq.weight if BFQ is loaded, else io.weight with
			# weight 10..1000 mapped to 1..10000: 1 + (500-10)*9999/990 = 4950
			if [ -e "$C1CG/io.bfq.weight" ]; then
				check a-io.weight "$C1CG/io.bfq.weight" "default 500"
			else
				check a-io.weight "$C1CG/io.weight" "default 4950"
			fi
		else
			skip a-io.weight "no io controller in this kernel"
		fi
		got=$(sed -n 's/^CGROUP=//p' "$WORK/$C1.out" | sed 's/ *$//')
		[ "$got" = "0::/" ] && pass a-inside-cgroupns ||
			fail a-inside-cgroupns "/proc/self/cgroup inside is '$got', want '0::/' (cgroup namespace)"
		got=$(sed -n 's/^MEMMAX=//p' "$WORK/$C1.out")
		[ "$got" = 67108864 ] && pass a-inside-cgroupfs ||
			fail a-inside-cgroupfs "/sys/fs/cgroup/memory.max inside is '$got', want 67108864"
	fi
fi

# ---------------------------------------------------------------- (b) update
info "group (b) at $(up)s"
if skipped b; then
	skip b "skipped by SKIP_TESTS"
elif [ $C1_UP = no ]; then
	fail b "not run: container $C1 is not up"
elif rt "$WORK/rt.out" update --memory 134217728 --pids-limit 64 "$C1"; then
	check b-update-memory "$C1CG/memory.max" 134217728
	check b-update-pids "$C1CG/pids.max" 64
	check b-update-keeps-cpu "$C1CG/cpu.max" "50000 100000"
else
	fail b-update "$RT_WHY"
fi

# ---------------------------------------------------------------- (c) pause/resume
info "group (c) at $(up)s"
frozen() { grep -qx "frozen $1" "$C1CG/cgroup.events" 2>/dev/null; }
if skipped c; then
	skip c "skipped by SKIP_TESTS"
elif [ $C1_UP = no ]; then
	fail c "not run: container $C1 is not up"
elif rt "$WORK/rt.out" pause "$C1"; then
	check c-pause-cgroup.freeze "$C1CG/cgroup.freeze" 1
	wait_for frozen 1 && pass c-pause-cgroup.events ||
		fail c-pause-cgroup.events "cgroup.events: $(short "$C1CG/cgroup.events")"
	st=$(state $C1 status)
	[ "$st" = paused ] && pass c-pause-state || fail c-pause-state "state status is '$st', want paused"
	if rt "$WORK/rt.out" resume "$C1"; then
		check c-resume-cgroup.freeze "$C1CG/cgroup.freeze" 0
		wait_for frozen 0 && pass c-resume-cgroup.events ||
			fail c-resume-cgroup.events "cgroup.events: $(short "$C1CG/cgroup.events")"
		st=$(state $C1 status)
		[ "$st" = running ] && pass c-resume-state || fail c-resume-state "state status is '$st', want running"
	else
		fail c-resume "$RT_WHY"
	fi
else
	fail c-pause "$RT_WHY"
fi

# ---------------------------------------------------------------- (d) kill + delete
info "group (d) at $(up)s"
if skipped d; then
	skip d "skipped by SKIP_TESTS"
elif [ $C1_UP = no ]; then
	fail d "not run: container $C1 is not up"
else
	if rt "$WORK/rt.out" kill "$C1" KILL; then
		wait_for status_is $C1 stopped && pass d-kill-stopped ||
			fail d-kill-stopped "state status is '$(state $C1 status)' after kill, want stopped"
	else
		fail d-kill "$RT_WHY"
	fi
	if rt "$WORK/rt.out" delete "$C1"; then
		wait_for gone "$C1CG" && pass d-delete-cgroup-removed ||
			fail d-delete-cgroup-removed "$C1CG still exists after delete (cgroup.procs: $(short "$C1CG/cgroup.procs"))"
		if rt "$WORK/rt.out" state "$C1"; then
			fail d-delete-state-gone "'state $C1' still succeeds after delete"
		else
			pass d-delete-state-gone
		fi
	else
		fail d-delete "$RT_WHY"
	fi
fi
# whatever happened, do not leave c1 behind
[ -e "$WORK/$C1" ] && rt "$WORK/rt.out" delete -f "$C1"

# ---------------------------------------------------------------- (e) devices
# Container with linux.resources.devices = deny-all (+ the runtime's default
# allow list: null zero full random urandom tty ptmx ...).  Inside: read
# /dev/urandom (must work); mknod /dev/kmsg (c 1:11, not a default device)
# and open it write-only (must fail, at mknod or at open).  A control
# container that also allows c 1:11 must be able to open it, which proves
# the denial comes from the device rules.  Uses create + start.
info "group (e) at $(up)s"
# run_dev NAME DEVICES_JSON : create + start, wait for exit; output in $WORK/NAME.out
run_dev() {
	ARGS='[ "sh", "-c", "echo URANDOM=$(head -c1 /dev/urandom | wc -c); if mknod /dev/kmsg-t c 1 11 2>/dev/null; then if (: >/dev/kmsg-t) 2>/dev/null; then echo KMSG=open; else echo KMSG=denied-open; fi; else echo KMSG=denied-mknod; fi; echo DONE" ]'
	mk_bundle "$WORK/$1" "$ARGS" "/$CGPARENT/$1" "{ \"devices\": $2 }"
	rt "$WORK/$1.out" create --bundle "$WORK/$1" "$1" || { DEV_ERR=$RT_WHY; return 1; }
	st=$(state "$1" status)
	[ "$st" = created ] || { DEV_ERR="state status after create is '$st', want created"; return 1; }
	rt "$WORK/rt.out" start "$1" || { DEV_ERR=$RT_WHY; return 1; }
	wait_for file_has "$WORK/$1.out" DONE ||
		{ DEV_ERR="container never printed DONE; output: $(short "$WORK/$1.out")"; return 1; }
	wait_for status_is "$1" stopped
	return 0
}
if skipped e; then
	skip e "skipped by SKIP_TESTS"
else
	DENY='[ { "allow": false, "access": "rwm" } ]'
	ALLOW='[ { "allow": false, "access": "rwm" },
      { "allow": true, "type": "c", "major": 1, "minor": 11, "access": "rwm" } ]'
	DEV_ERR=
	if run_dev d1 "$DENY"; then
		out=$(short "$WORK/d1.out")
		info "deny-all container said: $out"
		case $out in
		*URANDOM=1*) pass e-devices-urandom ;;
		*) fail e-devices-urandom "reading /dev/urandom failed under deny-all: $out" ;;
		esac
		case $out in
		*KMSG=denied-open* | *KMSG=denied-mknod*) pass e-devices-deny ;;
		*) fail e-devices-deny "c 1:11 usable under deny-all: $out" ;;
		esac
		if run_dev d2 "$ALLOW"; then
			out=$(short "$WORK/d2.out")
			info "allow-c1:11 container said: $out"
			case $out in
			*KMSG=open*) pass e-devices-allow ;;
			*) fail e-devices-allow "c 1:11 explicitly allowed but not usable: $out" ;;
			esac
		else
			fail e-devices-allow "$DEV_ERR"
		fi
	else
		case $DEV_ERR in
		*[Nn]ot\ supported* | *[Uu]nsupported* | *[Nn]ot\ implemented*)
			skip e "runtime does not support linux.resources.devices: $DEV_ERR" ;;
		*) fail e-devices "$DEV_ERR" ;;
		esac
	fi
	for c in d1 d2; do
		[ -e "$WORK/$c" ] || continue
		rt "$WORK/rt.out" delete -f "$c"
		wait_for gone "$CG/$CGPARENT/$c" ||
			fail "e-cleanup-$c" "$CG/$CGPARENT/$c still exists after delete -f"
	done
fi

info "done at $(up)s"
echo "BERTH-VM-RESULT: $PASSED passed, $FAILED failed, $SKIPPED skipped"
