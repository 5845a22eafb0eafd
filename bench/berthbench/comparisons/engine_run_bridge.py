"""engine-run-bridge: `run --rm busybox true` end to end WITH the default
network (each engine's bridge), for berthd (berth CLI), dockerd 20.10 (docker CLI) and
podman (crun, netavark), interleaved with the same command with `--network
none` on the same daemons, so the cost of attaching a container to the bridge
is the difference of two medians measured side by side."""

from __future__ import annotations

import gc
import ipaddress
import os
import re
import time

from .. import engines, netenv
from ..bundle import PROBE_EXIT, PROBE_MARKER
from ..cleanup import unmount_under
from ..context import Context, NotAvailable
from ..proc import Spawner
from ..result import Result
from ..util import log, short, which
from .runtime_run import rotated

NAME = "engine-run-bridge"
TITLE = "Engine: `run --rm busybox true` end to end WITH the default network (bridge), berthd vs dockerd 20.10 vs podman"
APT_PACKAGES = ["busybox-static", "podman", "crun"]
BASELINE = "berth"
RUN_TIMEOUT = 60.0   # per run; --quick: 30
TARGET_MS = 40.0     # issue 5: berth run with the default network <= 40 ms median
ENGINES = ("berth", "docker", "podman")
# host-global files podman/netavark create on first use of a bridge network
PODMAN_HOST_STATE = ("/run/containers/networks/ipam.db", "/run/netns")
SUBJECTS = {
    "berth": "berth CLI → berthd, default network (its bridge; veth, address, nftables)",
    "docker": "docker CLI → dockerd 20.10 with its bridge, iptables and userland proxy (its defaults)",
    "podman": "podman run --runtime crun, default network (a netavark bridge network the bench defines)",
    "berth-none": "the same berthd, `--network none`",
    "docker-none": "the same dockerd, `--network none`",
    "podman-none": "the same podman, `--network none`",
}

METHOD = (
    "The three engines run at once, in private directories as in engine-run (same busybox image, same "
    "image id everywhere, exec roots / runroot on private tmpfs), but WITH networking, each on its own bridge "
    "and subnet (free /24s in 10.192.0.0/11): **berthd** `--bridge bb<pid>bx --bip GW/24 --firewall-table "
    "berth_bench_<pid>_x --default-address-pool …`; **dockerd** 20.10 with its networking defaults (iptables, "
    "ip masquerade, userland proxy) on a bridge the bench creates for it and passes with `--bridge` (dockerd "
    "needs an existing bridge for a non-default name, and `--bip` cannot be combined with `--bridge`; a "
    "bench-owned name leaves any real `docker0` alone); **podman** 4.3 (crun, netavark) with a bridge "
    "network the bench defines in its private `--network-config-dir` (netavark's JSON file for it: bridge "
    "bb<pid>px, the bench's subnet, no DNS — podman 4.3's `network create` has no `--interface-name`) "
    "and makes the default with `default_network` in its private "
    "containers.conf (podman's built-in default network `podman` would use the host-global `podman0` bridge and "
    "10.88.0.0/16). The timed commands are `docker -H … run --rm --pull never busybox true` (no `--network`: "
    "the engine's default bridge) and `podman … run --rm --pull never --cgroup-parent P busybox true`; the "
    "`-none` subjects add `--network none` and run against the same daemons in the same rounds. Before "
    "timing, each subject runs `sh -c 'echo marker pid=$$; ip -o -4 addr show; exit 7'`: it must print the "
    "marker as pid 1, exit 7, and (bridge subjects) have an IPv4 address in its engine's subnet besides "
    "loopback (`-none` subjects: loopback only). Rounds are interleaved, one run of each subject per round, "
    "the starting subject rotating; the first `warmup` rounds are discarded; wall time is perf_counter_ns from "
    "spawn to reap; a failed or timed-out run ends that subject's measurement. Afterwards every engine removes "
    "its containers and stops, and the host's network state is put back and compared with a snapshot taken "
    "before (berthd's bridge, nftables table and FORWARD rules; dockerd's and netavark's iptables rules and "
    "chains — every rule/chain not there before that names the bench's bridges or subnets, or is "
    "DOCKER*/NETAVARK* plumbing while no other dockerd (with iptables) or podman network is in use, is deleted, policies restored; the bridges; "
    "ip_forward and bridge-nf-call-* sysctls; netavark's `/run/containers/networks/ipam.db` and an empty "
    "`/run/netns` if podman created them). Changes other processes on the host made meanwhile are listed "
    "apart and left alone."
)


class Subject:
    def __init__(self, name):
        self.name = name
        self.usable = True
        self.run = None


def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    n_runs = ctx.args.runs if ctx.args.runs is not None else (10 if ctx.quick else 50)
    warmup = ctx.args.warmup if ctx.args.warmup is not None else (3 if ctx.quick else 5)
    timeout = 30.0 if ctx.quick else RUN_TIMEOUT
    res = Result(
        NAME, TITLE,
        "What a user waits for: one complete `run --rm` of a trivial container from the CLI with the engine's "
        "default network, image already local; `--network none` beside it on the same daemons shows what "
        "attaching to the bridge costs. Subjects: " + "; ".join(f"**{k}**: {v}" for k, v in SUBJECTS.items()) + ".",
        METHOD,
        {"runs": n_runs, "warmup": warmup, "timeout_s": timeout, "order": "interleaved, rotated each round"},
        [{"key": "wall_ms", "label": "wall time per run", "unit": "ms", "better": "lower"}],
        baseline=BASELINE,
    )
    subjects = {n: Subject(n) for n in SUBJECTS}
    for n in SUBJECTS:
        res.subject(n)
    details: dict = {"host": {}}
    res.d["details"] = details

    def drop(name, why):
        s = subjects[name]
        if s.usable:
            s.usable = False
            res.not_measured(name, why)
            log(f"{NAME}: {name}: not measured: {why}")

    def drop_engine(e, why):
        drop(e, why)
        drop(f"{e}-none", why)

    pre = engines.prerequisites(ctx, list(ENGINES))
    res.d["params"]["versions"] = pre["versions"]
    if "berth" in pre["how"]:
        res.d["params"]["berthd"] = pre["how"]["berth"]
    for e in ENGINES:
        if e in pre["why"]:
            drop_engine(e, pre["why"][e])
    if subjects["berth"].usable and not engines.berthd_has_networking(pre["berthd"]):
        drop_engine("berth", f"{pre['berthd']} has no networking (no --firewall-table flag)")
    if subjects["podman"].usable and which("crun") is None:
        drop_engine("podman", "crun not installed")
    if subjects["podman"].usable and which("netavark") is None and not any(
            os.path.exists(p) for p in ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark")):
        drop_engine("podman", "netavark not installed (podman's bridge networking)")
    for tool in ("ip", "nft", "iptables"):
        if which(tool) is None:
            for e in ENGINES:
                drop_engine(e, f"{tool} not found")
    try:
        bundle = ctx.busybox_bundle()
    except NotAvailable as e:
        for n in SUBJECTS:
            drop(n, str(e))
        return res.finish(time.monotonic() - t_start)
    archive, image_id = engines.busybox_archive(ctx.workdir, bundle.rootfs)
    res.d["params"]["image_id"] = image_id

    before = netenv.snapshot()
    details["host"]["before"] = netenv.describe(before)
    podman_state = {p: os.path.exists(p) for p in PODMAN_HOST_STATE}
    own_bridges, own_tables = [], []
    eng: dict[str, engines.Engine] = {}
    nets: dict[str, ipaddress.IPv4Network] = {}
    spawner = Spawner(ctx.workdir, NAME)
    alloc = engines.subnet_allocator(ctx.pid)
    try:
        # ---- engines up (dockerd first: berthd then sees its FORWARD policy), image in
        if subjects["docker"].usable:
            sub = alloc.next()
            br = netenv.bridge_name(ctx.pid, "d", "x")
            own_bridges.append(br)
            err = netenv.make_bridge(br, f"{sub.network_address + 1}/{sub.prefixlen}")
            if err:
                drop_engine("docker", f"cannot create its bridge: {err}")
            else:
                eng["docker"] = engines.Dockerd(ctx.workdir, "runbr", ctx.pid, pre["dockerd"], pre["docker"], bridge=br)
                nets["docker"] = sub
        if subjects["berth"].usable:
            bnet = engines.BerthNet(ctx.pid, "x")
            own_bridges.append(bnet.bridge)
            own_tables.append(bnet.table)
            eng["berth"] = engines.Berthd(ctx.workdir, "runbr", ctx.pid, pre["berthd"], pre["monitor"],
                                          pre["docker"], net=bnet, berth_cli=pre.get("berth_cli"))
            nets["berth"] = bnet.subnet
        if subjects["podman"].usable:
            sub = alloc.next()
            br = netenv.bridge_name(ctx.pid, "p", "x")
            own_bridges.append(br)
            eng["podman"] = engines.Podman(ctx.workdir, "runbr", ctx.pid, pre["podman"],
                                           net={"name": f"benchnet{ctx.pid}", "bridge": br, "subnet": str(sub),
                                                "gateway": str(sub.network_address + 1)})
            eng["podman"].runtime = "crun"
            nets["podman"] = sub
        for key in ("docker", "berth", "podman"):
            e = eng.get(key)
            if e is None:
                continue
            try:
                ready = e.start()
                if ready:
                    res.d["params"][f"{key}_ready_s"] = round(ready, 2)
                note = e.load_image(archive, image_id)
                if note:
                    res.note(note)
                if e.run_dir_note:
                    res.note(e.run_dir_note)
            except (engines.EngineError, OSError) as ex:
                drop_engine(key, f"could not start/load the image: {ex}")
        details["host"]["forward_policy_while_running"] = netenv.forward_policy()
        details["host"]["subnets"] = {k: str(v) for k, v in nets.items()}

        probe_cmd = ["sh", "-c", f'echo "{PROBE_MARKER} pid=$$"; ip -o -4 addr show; exit {PROBE_EXIT}']
        want_line = f"{PROBE_MARKER} pid=1"

        def cli_run(name):
            key = name.split("-")[0]
            e = eng[key]
            none = name.endswith("-none")
            extra = ["--cgroup-parent", e.cgroup_parent] if isinstance(e, engines.Podman) else []
            if none:
                extra += ["--network", "none"]

            def one(probe):
                cmd = probe_cmd if probe else ["true"]
                argv = e.cli("run", "--rm", "--pull", "never", *extra, "busybox", *cmd)
                o = spawner.run(argv, timeout, capture_stdout=probe, env=e.env)
                if probe:
                    lines = o.stdout.splitlines()
                    addrs = re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", o.stdout)
                    non_lo = [a for a in addrs if not a.startswith("127.")]
                    ok = not o.timed_out and o.rc == PROBE_EXIT and want_line in lines
                    if none:
                        ok = ok and not non_lo
                    else:
                        ok = ok and any(ipaddress.ip_address(a) in nets[key] for a in non_lo)
                    if not ok:
                        return None, (f"probe: want exit {PROBE_EXIT}, '{want_line}' and "
                                      + ("no address but loopback" if none else f"an address in {nets[key]}")
                                      + ", got " + (f"timeout {timeout:.0f}s" if o.timed_out else f"exit {o.rc}")
                                      + f", stdout '{short(o.stdout, 200)}', stderr '{short(o.stderr, 300)}'")
                    return o.wall_ns / 1e6, None
                if not o.ok:
                    return None, (f"timed out after {timeout:.0f}s" if o.timed_out else f"exit {o.rc}") \
                        + f": {short(o.stderr, 300)}"
                return o.wall_ns / 1e6, None
            return one

        for name, s in subjects.items():
            if s.usable:
                s.run = cli_run(name)
        active = [s for s in subjects.values() if s.usable]
        for s in list(active):
            _, err = s.run(True)
            if err:
                drop(s.name, err)
                active.remove(s)
        log(f"{NAME}: {warmup} warm-up + {n_runs} timed rounds over {', '.join(s.name for s in active) or 'nothing'}")
        gc.disable()
        try:
            for i in range(warmup + n_runs):
                for s in rotated(active, i):
                    if not s.usable:
                        continue
                    ms, err = s.run(False)
                    if err:
                        phase = f"warm-up run {i}" if i < warmup else f"timed run {i - warmup}"
                        drop(s.name, f"failed: {phase}: {err}")
                        continue
                    if i >= warmup:
                        res.add(s.name, "wall_ms", ms)
                active = [s for s in active if s.usable]
                if (i + 1) % 10 == 0:
                    log(f"{NAME}: round {i + 1}/{warmup + n_runs}")
        finally:
            gc.enable()
        for key, e in eng.items():
            if e.started:
                left = e.container_ids()
                if left:
                    res.note(f"{key}: {len(left)} container(s) still existed after the runs (`--rm` should remove them)")
    finally:
        spawner.close()
        for key in ("berth", "podman", "docker"):
            e = eng.get(key)
            if e is not None:
                for n in e.stop():
                    res.note(n)
        r = netenv.restore(before, own_bridges, own_tables, list(nets.values()))
        if "podman" in eng and not r["foreign"]:
            # host-global state netavark makes on first use: the bench's, if it was not there before
            for p, existed in podman_state.items():
                if existed or not os.path.exists(p):
                    continue
                try:
                    if os.path.isdir(p):
                        # podman bind-mounts /run/netns on itself (in the bench's mount
                        # namespace: the host's /run keeps just the directory)
                        unmount_under(p)
                        os.rmdir(p)
                    else:
                        os.unlink(p)
                    r["actions"].append(f"removed {p} (made by podman/netavark in this run)")
                except OSError as ex:
                    r["problems"].append(f"{p} (made by podman/netavark in this run) not removed: {ex}")
        details["host"]["cleanup_actions"] = r["actions"]
        details["host"]["cleanup_left_alone"] = r["left_alone"]
        netenv.log_result(r, NAME)
        for n in netenv.cleanup_notes(r):
            res.note(n)

    out = res.finish(time.monotonic() - t_start)
    med = {s["name"]: s["stats"].get("wall_ms", {}).get("median") for s in out["subjects"] if s["measured"]}
    b = med.get("berth")
    if b is not None:
        res.note(f"Target (issue 5): berth `run --rm` with the default network ≤ {TARGET_MS:.0f} ms median — measured "
                 f"{b:.1f} ms: " + ("met" if b <= TARGET_MS else f"not met ({b / TARGET_MS:.1f}× the target)") + ".")
    peers = [f"{n} {med[n]:.0f} ms" for n in ("docker", "podman") if med.get(n) is not None]
    res.note("Issue's earlier measurements with the default network: docker 416–423 ms, podman 429–523 ms; here: "
             + (", ".join(peers) if peers else "no peer measured") + ".")
    cost = [f"{k} {med[k] - med[k + '-none']:+.1f} ms" for k in ENGINES
            if med.get(k) is not None and med.get(k + "-none") is not None]
    if cost:
        res.note("Cost of the default network (median with bridge − median with `--network none`, same daemons, "
                 "same rounds): " + ", ".join(cost) + ".")
    h = details["host"]
    res.note(f"Host before: {h.get('before')}. While the engines ran: FORWARD policy "
             f"{h.get('forward_policy_while_running')}; subnets {h.get('subnets')}.")
    return out
