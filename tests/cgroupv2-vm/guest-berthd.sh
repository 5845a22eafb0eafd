#!/bin/sh
# berthd on a pure cgroup v2 host: the daemon, its monitors and the docker
# CLI, end to end.  Runs INSIDE the test VM (busybox sh, as root), after
# guest-tests.sh, started by the VM's /init.  Environment:
#   BERTHD        berthd binary (berth-monitor must be next to it)
#   DOCKER        docker CLI binary
#   IMAGE_TAR     busybox rootfs tar, imported as busybox:latest.  Its
#                 /bin/busybox is an empty placeholder: every container gets
#                 the VM's static busybox bind-mounted there read-only (the
#                 debug berthd's import gzips and hashes the layer at ~70 KB/s
#                 under TCG: 2 MB of busybox would cost ~30 s)
#   NET_MODE      bridge: containers on berthd's default bridge (own --bridge,
#                 --bip, --firewall-table); none: --network none
#   D_TIMEOUT     seconds one docker command may take (default 30)
#   DEADLINE      guest uptime (s) by which the scenario must be done; later
#                 commands get less time so the result line still comes out
#                 (run.sh: QEMU_TIMEOUT - 15)
#   SKIP_TESTS    "berthd" skips this whole scenario
# Output: BERTH-VM-TEST/INFO lines as guest-tests.sh, then its own
#   BERTH-VM-RESULT: <N> passed, <M> failed, <K> skipped      (always last)
#
# Checks (each prints what it read on failure):
#   bd-start        berthd answers; docker info says CgroupVersion 2
#   bd-import       docker import of the busybox tar (busybox bind-mounted: -v)
#   bd-run-true     docker run --rm busybox true -> 0
#   bd-run-exit3    docker run --rm busybox sh -c 'exit 3' -> 3
#   bd-network      (bridge) the container has an eth0 address in --bip's subnet
#                   and reaches the bridge's gateway
#   bd-limits-*     run -d --memory 64m --cpus 0.5 --pids-limit 50: the container's
#                   cgroup <parent>/<id> has memory.max, cpu.max, pids.max, and the
#                   container's pid in cgroup.procs
#   bd-stats-*      docker stats --no-stream and GET /containers/ID/stats?stream=false
#                   (cgroup v2 memory.stat keys, usage > 0, limit, cpu total_usage > 0)
#   bd-update-*     docker update --memory 128m: memory.max changes live, cpu/pids stay
#   bd-pause-*      docker pause/unpause: cgroup.freeze, cgroup.events, State.Status
#   bd-oom          --memory 16m container that outgrows it: State.OOMKilled true, 137
#   bd-cleanup      docker rm -f everything: no container, no cgroup under the parent

BERTHD=${BERTHD:-/usr/local/bin/berthd}
DOCKER=${DOCKER:-/usr/local/bin/docker}
IMAGE_TAR=${IMAGE_TAR:-/berthd/busybox.tar}
NET_MODE=${NET_MODE:-none}
D_TIMEOUT=${D_TIMEOUT:-30}
DEADLINE=${DEADLINE:-285}
WAIT=30 # seconds, for every poll loop
CG=/sys/fs/cgroup
CGPARENT=berth-vm-d
WORK=/tmp/berthd-vm
EXEC_ROOT=/run/berth-vm
SOCK=$EXEC_ROOT/berth.sock
TCP=127.0.0.1:2375 # second listener, for raw API reads with busybox wget
BRIDGE=berthvm0
BIP=10.231.0.1/24
export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$WORK/docker-config HOME=$WORK

PASSED=0
FAILED=0
SKIPPED=0
pass() { PASSED=$((PASSED + 1)); echo "BERTH-VM-TEST: PASS $1"; }
fail() { FAILED=$((FAILED + 1)); echo "BERTH-VM-TEST: FAIL $1: $2"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "BERTH-VM-TEST: SKIP $1: $2"; }
info() { echo "BERTH-VM-INFO: $*"; }
up() { cut -d" " -f1 /proc/uptime; }
upi() { cut -d. -f1 /proc/uptime; }
oneline() { tr '\n' ' ' | sed 's/  */ /g; s/ $//'; }
short() { oneline <"$1" 2>/dev/null | cut -c1-300; }
result() {
	info "berthd scenario done at $(up)s"
	echo "BERTH-VM-RESULT: $PASSED passed, $FAILED failed, $SKIPPED skipped"
	exit 0
}

case " ${SKIP_TESTS:-} " in *" berthd "*)
	skip berthd "skipped by SKIP_TESTS"
	result ;;
esac
info "berthd scenario at $(up)s (network: $NET_MODE)"

# dk OUT ARGS... : one docker CLI command, stdin /dev/null, stdout+stderr ->
# OUT; killed after D_TIMEOUT s.  Returns its status; DK_WHY says what failed.
# limit SECS : SECS, or less if DEADLINE is nearer (at least 1)
limit() {
	l=$((DEADLINE - $(upi)))
	[ "$l" -lt "$1" ] || l=$1
	[ "$l" -ge 1 ] || l=1
	echo "$l"
}
dk() {
	out=$1
	shift
	t=$(limit "$D_TIMEOUT")
	timeout -s KILL "$t" "$DOCKER" "$@" </dev/null >"$out" 2>&1
	rc=$?
	DK_WHY="'docker $*' exited $rc: $(short "$out")"
	[ $rc = 137 ] && DK_WHY="'docker $*' exited 137 (killed after ${t}s?): $(short "$out")"
	return $rc
}
# get URL_PATH : raw API GET over the TCP listener, the body on stdout
get() { timeout -s KILL "$(limit "$D_TIMEOUT")" wget -q -O - "http://$TCP$1" 2>&1; }
# wait_for CMD... : poll until CMD succeeds, at most $WAIT seconds
wait_for() {
	wend=$(($(upi) + $(limit "$WAIT")))
	while :; do
		"$@" && return 0
		[ "$(upi)" -lt $wend ] || return 1
		sleep 0.2
	done
}
# check NAME FILE EXPECTED : the first line of a cgroup file
check() {
	if [ ! -e "$2" ]; then
		fail "$1" "$2 does not exist"
		return
	fi
	got=$(head -n1 "$2")
	if [ "$got" = "$3" ]; then pass "$1"; else fail "$1" "$2 is '$got', want '$3'"; fi
}
# inspect ID FORMAT : one docker inspect field (empty if that fails)
inspect() { dk "$WORK/inspect.out" inspect -f "$2" "$1" && cat "$WORK/inspect.out"; }
# json_num JSON KEY : the first number value of "KEY" in (one-line) JSON text
json_num() { echo "$1" | grep -o '"'"$2"'":[0-9]*' | head -n1 | cut -d: -f2; }
# after JSON KEY : the JSON text from the first "KEY": on
after() { echo "$1" | awk -v k="\"$2\":" '{ i = index($0, k); if (i) print substr($0, i) }'; }
# a finished child stays a zombie (state Z) until `wait`
berthd_alive() { [ -e "/proc/$BERTHD_PID" ] && [ "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$BERTHD_PID/stat" 2>/dev/null)" != Z ]; }
berthd_gone() { ! berthd_alive; }
dump_berthd() {
	info "berthd log (tail):"
	tail -n 20 "$WORK/berthd.log" 2>/dev/null | while read -r l; do info "  $l"; done
}

# ---------------------------------------------------------------- start
mkdir -p "$WORK" "$DOCKER_CONFIG"
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# its own bridge, subnet and nftables table even with NET_MODE=none
NETFLAGS="--bridge $BRIDGE --bip $BIP --firewall-table berthvm"
echo '{}' >"$WORK/daemon.json"
"$BERTHD" --config-file "$WORK/daemon.json" --data-root /var/lib/berth-vm --exec-root "$EXEC_ROOT" \
	-H "unix://$SOCK" -H "tcp://$TCP" --cgroup-parent "/$CGPARENT" $NETFLAGS \
	</dev/null >"$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
# answers, or has died (then stop waiting)
server_up() { dk "$WORK/version.out" version --format '{{.Server.Version}}' || ! berthd_alive; }
t0=$(up)
if ! wait_for server_up || ! berthd_alive; then
	why="did not answer within ${WAIT}s"
	berthd_alive || why="exited before answering"
	fail bd-start "berthd $why; docker: $(short "$WORK/version.out")"
	dump_berthd
	berthd_alive && kill -9 "$BERTHD_PID"
	result
fi
cgv=$(dk "$WORK/info.out" info --format '{{.CgroupVersion}}' && cat "$WORK/info.out")
info "berthd $(cat "$WORK/version.out") answered at $(up)s (started at ${t0}s); docker CLI $("$DOCKER" --version 2>&1)"
[ "$cgv" = 2 ] && pass bd-start || fail bd-start "docker info CgroupVersion is '$cgv', want 2 ($(short "$WORK/info.out"))"

# ---------------------------------------------------------------- import
IMPORTED=no
if timeout -s KILL "$(limit $((D_TIMEOUT * 2)))" "$DOCKER" import "$IMAGE_TAR" busybox:latest >"$WORK/import.out" 2>&1 </dev/null; then
	if dk "$WORK/images.out" image inspect -f '{{.Id}}' busybox:latest; then
		pass bd-import
		IMPORTED=yes
	else
		fail bd-import "imported, but: $DK_WHY"
	fi
else
	fail bd-import "'docker import $IMAGE_TAR busybox:latest' failed: $(short "$WORK/import.out")"
fi
if [ $IMPORTED = no ]; then
	dump_berthd
	kill "$BERTHD_PID"
	result
fi

RUNOPTS="--network=none -v /bin/busybox:/bin/busybox:ro"
[ "$NET_MODE" = bridge ] && RUNOPTS="--network=bridge -v /bin/busybox:/bin/busybox:ro"

# ---------------------------------------------------------------- 1. run, exit codes
info "run + exit codes at $(up)s"
dk "$WORK/run.out" run --rm $RUNOPTS busybox true
rc=$?
[ $rc = 0 ] && pass bd-run-true || fail bd-run-true "$DK_WHY"
dk "$WORK/run.out" run --rm $RUNOPTS busybox sh -c 'exit 3'
rc=$?
[ $rc = 3 ] && pass bd-run-exit3 || fail bd-run-exit3 "exit status $rc, want 3; output: $(short "$WORK/run.out")"

if [ "$NET_MODE" = bridge ]; then
	# eth0's address is in --bip's subnet and the gateway (the bridge) answers
	gw=${BIP%/*}
	if dk "$WORK/net.out" run --rm $RUNOPTS busybox sh -c "ip -4 -o addr show eth0; ping -c1 -W5 $gw >/dev/null && echo PING-OK"; then
		case $(short "$WORK/net.out") in
		*"inet ${gw%.*}."*PING-OK*) pass bd-network ;;
		*) fail bd-network "want an eth0 address in $BIP and PING-OK; got: $(short "$WORK/net.out")" ;;
		esac
	else
		fail bd-network "$DK_WHY"
	fi
else
	skip bd-network "NET_MODE=$NET_MODE: containers run with --network none"
fi

# ---------------------------------------------------------------- 2. limits
info "limits at $(up)s"
C1=
if dk "$WORK/c1.out" run -d $RUNOPTS --memory 64m --cpus 0.5 --pids-limit 50 busybox sleep 100; then
	C1=$(tail -n1 "$WORK/c1.out")
	C1CG=$CG/$CGPARENT/$C1
	info "c1 = $C1"
	pid=$(inspect "$C1" '{{.State.Pid}}')
	if [ -n "$pid" ] && [ "$pid" != 0 ] && grep -qx "$pid" "$C1CG/cgroup.procs" 2>/dev/null; then
		pass bd-limits-cgroup.procs
	else
		fail bd-limits-cgroup.procs "State.Pid '$pid' not in $C1CG/cgroup.procs ($(short "$C1CG/cgroup.procs")); cgroups under the parent: $(ls "$CG/$CGPARENT" 2>&1 | oneline | cut -c1-200)"
	fi
	check bd-limits-memory.max "$C1CG/memory.max" 67108864
	check bd-limits-cpu.max "$C1CG/cpu.max" "50000 100000"
	check bd-limits-pids.max "$C1CG/pids.max" 50
else
	fail bd-limits "$DK_WHY"
fi

# ---------------------------------------------------------------- 3. stats
info "stats at $(up)s"
if [ -n "$C1" ]; then
	# the CLI's view: "1.2MiB / 64MiB"
	if dk "$WORK/stats.out" stats --no-stream --format '{{.MemUsage}}|{{.CPUPerc}}|{{.PIDs}}' "$C1"; then
		s=$(tail -n1 "$WORK/stats.out")
		info "docker stats: $s"
		musage=${s%% / *}
		mlimit=${s#* / }
		mlimit=${mlimit%%|*}
		spids=${s##*|}
		case $musage in
		0B | 0 | "" | *[!0-9.KMGiB]*) fail bd-stats-cli "want a non-zero memory usage; got '$s'" ;;
		*) if [ "$mlimit" = 64MiB ] && [ "${spids:-0}" -ge 1 ] 2>/dev/null; then
			pass bd-stats-cli
		else
			fail bd-stats-cli "want 'USAGE / 64MiB|CPU%|PIDS>=1'; got '$s'"
		fi ;;
		esac
	else
		fail bd-stats-cli "$DK_WHY"
	fi
	# the raw document: values straight from memory.current/memory.stat/cpu.stat
	doc=$(get "/containers/$C1/stats?stream=false" | tr -d '\n ')
	echo "$doc" >"$WORK/stats.json"
	mem=$(after "$doc" memory_stats)
	usage=$(json_num "$mem" usage)
	limit=$(json_num "$mem" limit)
	anon=$(json_num "$mem" anon)
	cpu=$(json_num "$(after "$doc" cpu_stats)" total_usage)
	pids=$(json_num "$(after "$doc" pids_stats)" current)
	info "stats API: memory usage=$usage limit=$limit stats.anon=$anon, cpu total_usage=$cpu, pids current=$pids"
	if [ "${usage:-0}" -gt 0 ] && [ "$limit" = 67108864 ] && [ -n "$anon" ]; then
		pass bd-stats-memory
	else
		fail bd-stats-memory "want usage > 0, limit 67108864 and a cgroup v2 'anon' key in memory_stats.stats; got: $(echo "${mem:-$doc}" | cut -c1-400)"
	fi
	if [ "${cpu:-0}" -gt 0 ] && [ "${pids:-0}" -ge 1 ]; then
		pass bd-stats-cpu
	else
		fail bd-stats-cpu "want cpu_usage.total_usage > 0 and pids_stats.current >= 1; got: $(after "$doc" cpu_stats | cut -c1-200) ... $(after "$doc" pids_stats | cut -c1-100)"
	fi
else
	fail bd-stats "not run: the limits container is not up"
fi

# ---------------------------------------------------------------- 4. update
info "update at $(up)s"
if [ -z "$C1" ]; then
	fail bd-update "not run: the limits container is not up"
elif dk "$WORK/update.out" update --memory 128m "$C1"; then
	check bd-update-memory.max "$C1CG/memory.max" 134217728
	check bd-update-keeps-cpu.max "$C1CG/cpu.max" "50000 100000"
	check bd-update-keeps-pids.max "$C1CG/pids.max" 50
	m=$(inspect "$C1" '{{.HostConfig.Memory}}')
	[ "$m" = 134217728 ] && pass bd-update-inspect || fail bd-update-inspect "HostConfig.Memory is '$m', want 134217728"
else
	fail bd-update "$DK_WHY"
fi

# ---------------------------------------------------------------- 5. pause/unpause
info "pause at $(up)s"
frozen() { grep -qx "frozen $1" "$C1CG/cgroup.events" 2>/dev/null; }
if [ -z "$C1" ]; then
	fail bd-pause "not run: the limits container is not up"
elif dk "$WORK/pause.out" pause "$C1"; then
	check bd-pause-cgroup.freeze "$C1CG/cgroup.freeze" 1
	wait_for frozen 1 && pass bd-pause-frozen || fail bd-pause-frozen "cgroup.events: $(short "$C1CG/cgroup.events")"
	st=$(inspect "$C1" '{{.State.Status}} {{.State.Paused}}')
	[ "$st" = "paused true" ] && pass bd-pause-state || fail bd-pause-state "State.Status/Paused is '$st', want 'paused true'"
	if dk "$WORK/pause.out" unpause "$C1"; then
		check bd-unpause-cgroup.freeze "$C1CG/cgroup.freeze" 0
		wait_for frozen 0 && pass bd-unpause-thawed || fail bd-unpause-thawed "cgroup.events: $(short "$C1CG/cgroup.events")"
		st=$(inspect "$C1" '{{.State.Status}} {{.State.Paused}}')
		[ "$st" = "running false" ] && pass bd-unpause-state || fail bd-unpause-state "State.Status/Paused is '$st', want 'running false'"
	else
		fail bd-unpause "$DK_WHY"
	fi
else
	fail bd-pause "$DK_WHY"
fi

# ---------------------------------------------------------------- 6. OOM
# The shell's command substitution grows past 16 MiB; the kernel's OOM killer
# (memory.max in the container's cgroup) kills it.
info "oom at $(up)s"
dk "$WORK/oom.out" run --name oom $RUNOPTS --memory 16m busybox sh -c 'x=$(head -c 64m /dev/zero | tr "\0" a); echo survived ${#x}'
rc=$?
st=$(inspect oom '{{.State.OOMKilled}} {{.State.ExitCode}}')
info "oom container: docker run exited $rc, State.OOMKilled/ExitCode '$st', output: $(short "$WORK/oom.out")"
if [ "$st" = "true 137" ] && [ $rc = 137 ]; then
	pass bd-oom
else
	fail bd-oom "want 'true 137' and docker run exiting 137; got '$st', docker run exited $rc ($(short "$WORK/oom.out"))"
fi

# ---------------------------------------------------------------- 7. cleanup
info "cleanup at $(up)s"
dk "$WORK/ps.out" ps -aq --no-trunc
ids=$(cat "$WORK/ps.out")
[ -n "$ids" ] && dk "$WORK/rm.out" rm -f $ids
left() { dk "$WORK/ps.out" ps -aq && [ ! -s "$WORK/ps.out" ] && [ -z "$(find "$CG/$CGPARENT" -mindepth 1 -type d 2>/dev/null)" ]; }
if wait_for left; then
	pass bd-cleanup
else
	fail bd-cleanup "after 'docker rm -f $(echo $ids | cut -c1-40)...': containers: '$(short "$WORK/ps.out")'; cgroups under /$CGPARENT: '$(find "$CG/$CGPARENT" -mindepth 1 -type d 2>/dev/null | oneline | cut -c1-300)'"
fi

[ $FAILED = 0 ] || dump_berthd
kill "$BERTHD_PID" 2>/dev/null
wait_for berthd_gone || { info "berthd ignored SIGTERM"; kill -9 "$BERTHD_PID"; }
wait "$BERTHD_PID" 2>/dev/null
result
