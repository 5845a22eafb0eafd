"""network: iperf3 TCP throughput, one stream, over each engine's default
bridge — container → host (server on the host bound to the engine's bridge
gateway, client in a container) and host → container through a published port
(server in a container, host client to 127.0.0.1:HOSTPORT) — for berthd and
dockerd 20.10 (with its bridge, iptables and docker-proxy), and host loopback as
the ceiling. Interleaved rounds, rotating start; medians, p90, ratios."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import time

from .. import engines, netenv
from ..context import Context, NotAvailable
from ..result import Result
from ..util import ID_PREFIX, log, sh, short, which
from .runtime_run import rotated

NAME = "network"
TITLE = ("Network: iperf3 TCP throughput, container → host over the bridge and host → container through a "
         "published port (berthd, dockerd 20.10, host loopback)")
APT_PACKAGES = ["busybox-static", "iperf3"]
BASELINE = "berth"
IMAGE = "berth-bench-iperf3:latest"
CTR_PORT = 5201
SUBJECTS = {
    "berth": "docker CLI → berthd: its default bridge (veth + bridge; published port = nftables DNAT in the kernel)",
    "docker": "docker CLI → dockerd 20.10: its default bridge (veth + bridge, iptables; published port on "
              "127.0.0.1 = docker-proxy, its default userland proxy)",
    "loopback": "ceiling: host iperf3 client and server on 127.0.0.1, no container",
}
PATHS = {
    "c2h": "container → host over the bridge",
    "h2c": "host → container through a published port",
}
METRICS = [
    {"key": "c2h_gbps", "label": "container → host over the bridge (iperf3 client in a container → server on the "
                                 "host at the bridge gateway), 1 TCP stream", "unit": "Gbit/s", "better": "higher"},
    {"key": "h2c_gbps", "label": "host → container through a published port (host client → 127.0.0.1:HOSTPORT → "
                                 "server in a container), 1 TCP stream", "unit": "Gbit/s", "better": "higher"},
]
FULL_SECONDS, QUICK_SECONDS = 5, 2
FULL_ROUNDS, QUICK_ROUNDS = 6, 3
MAX_ROUNDS = 20   # `-n` is meant for the millisecond comparisons; a round here takes ~35 s
PROBE_SECONDS = 1
READY_TIMEOUT = 20.0
RUN_SLACK = 30.0  # a run may take this much longer than its -t before it is killed

METHOD = (
    "Two engines run at once, each in private directories under the bench's work dir (as in engine-run) but "
    "WITH networking, each with its own bridge and subnet (free /24s in 10.192.0.0/11 that nothing on the host "
    "routes): **dockerd** 20.10 with its defaults for networking — iptables, ip masquerade, and the userland "
    "proxy (docker-proxy) for published ports — on a bridge the bench creates for it (`ip link add bb<pid>dn "
    "type bridge` + the gateway address; dockerd's `--bridge` needs an existing bridge and `--bip` cannot be "
    "combined with it, and creating one with a bench-owned name avoids touching a `docker0` that may belong to "
    "a real installation); **berthd** with `--bridge bb<pid>bn --bip GW/24 --firewall-table "
    "berth_bench_<pid>_n --default-address-pool base=…/24,size=26`. dockerd starts first: when it sets iptables' "
    "FORWARD policy to DROP (dockerd 20.10 does so only if it had to turn on net.ipv4.ip_forward itself), "
    "berthd, started after it, must have its two narrowly scoped accept rules (comment `berth:<table>`) in "
    "that chain — checked and noted, as is the policy seen. Both load the same image, made by the bench "
    "from the busybox bundle's rootfs (static busybox + applet links) plus Debian's `/usr/bin/iperf3`, every "
    "shared library `ldd` lists for it and the dynamic loader (copied to the paths ldd names), with "
    "`docker load`; the image id is checked to be identical in both. Each engine's gateway is read back with "
    "`network inspect bridge` and must be the address the bench gave it. "
    "**container → host**: an `iperf3 -s -B GATEWAY -p PORT` server on the host bound to that engine's bridge "
    "gateway; each run is `docker run --rm --pull never IMAGE iperf3 -c GATEWAY -p PORT -t T -J` (the default "
    "network, i.e. the engine's bridge; container start/stop is outside iperf3's measurement). "
    "**host → container**: one container per engine, `docker run -d -p HOSTPORT:5201 IMAGE iperf3 -s`, and "
    "each run is a host `iperf3 -c 127.0.0.1 -p HOSTPORT -t T -J`. For docker this goes through docker-proxy "
    "(its default: DNAT rules do not apply to locally generated traffic to 127.0.0.1, so the proxy accepts and "
    "copies each byte in user space); for berth it is DNAT in the kernel (nftables output hook, route_localnet "
    "on its bridge, masquerade), no process in the data path. **loopback**: host iperf3 server and client on "
    "127.0.0.1 — the ceiling of one TCP stream on this machine (measured in both paths' rounds). "
    "Every run: one TCP stream, `-t T` seconds, JSON output (`-J`); the run counts only if iperf3 exited 0, its "
    "JSON has no `error`, one stream connected to the expected address and port (container → host: from an "
    "address in that engine's subnet), and both sender and receiver ran ≥ 90% of T; the number is the "
    "receiver's `end.sum_received.bits_per_second`. A run that fails or times out (T + 30 s) ends that "
    "subject's measurement of that path, and none of its numbers are reported. Before timing, one "
    f"{PROBE_SECONDS}-second run per subject and path must pass the same checks (host → container: retried "
    f"for up to {READY_TIMEOUT:.0f} s while the server in the container comes up). Rounds are interleaved: "
    "each round runs both paths, each path one run of berth, docker and loopback, the starting subject "
    "rotating per round. iperf3's client, server (and docker-proxy) share the machine's 2 cores, so these are "
    "CPU-bound figures: they compare the data paths' per-byte cost, not a NIC. Traffic goes only to "
    "127.0.0.1, the bridges' own addresses and the engines' containers. Afterwards: containers removed, "
    "daemons stopped, berthd's bridge and `inet` table and its FORWARD rules deleted, dockerd's bridge deleted, "
    "every iptables/ip6tables rule and chain that was not there before and is the bench's (names one of its "
    "bridges or subnets, or is dockerd's DOCKER, DOCKER-USER, DOCKER-ISOLATION-STAGE-* plumbing while no other "
    "dockerd with iptables runs) deleted, chain policies, iptables-nft tables and sysctls (ip_forward, bridge-nf-call-*, "
    "route_localnet) put back, and the host's network state compared with the snapshot taken before the "
    "engines started (any difference is noted; changes other processes on the host made meanwhile are listed "
    "apart and left alone)."
)


# ------------------------------------------------------------------ image

def iperf3_rootfs(workdir: str, busybox_rootfs: str, iperf3: str) -> tuple[str, list[str]]:
    """A copy of the busybox rootfs plus /usr/bin/iperf3, the libraries `ldd`
    lists and the dynamic loader, each at the path ldd gives (file contents,
    not symlinks). Returns (rootfs, [paths added])."""
    rc, out, err = sh(["ldd", iperf3], timeout=30)
    if rc != 0:
        raise RuntimeError(f"`ldd {iperf3}` failed: {short(err or out, 200)}")
    libs = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            path = line.split("=>", 1)[1].strip().split(" (")[0].strip()
        else:
            path = line.split(" (")[0].strip()
        if path.startswith("/"):
            libs.append(path)
        elif "not found" in line:
            raise RuntimeError(f"ldd {iperf3}: {line}")
    if not any("ld-linux" in p or "/ld-" in p or "ld64" in p for p in libs):
        raise RuntimeError(f"ldd {iperf3} names no dynamic loader: {short(out, 200)}")
    root = os.path.join(workdir, "iperf3-rootfs")
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    added = []
    for src, dst in [(iperf3, "/usr/bin/iperf3")] + [(p, p) for p in libs]:
        target = os.path.join(root, dst.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.realpath(src), target)
        os.chmod(target, 0o755)
        added.append(dst)
    return root, added


# ------------------------------------------------------------------ helpers

def _listening(ip: str, port: int) -> bool:
    """A TCP socket listening on ip:port (IPv4) per /proc/net/tcp."""
    want_ip = "".join(f"{b:02X}" for b in reversed(ipaddress.IPv4Address(ip).packed))
    want = f"{want_ip}:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if len(p) > 3 and p[1] == want and p[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def _ports_in_use() -> set[int]:
    used = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if len(p) > 2:
                        used.add(int(p[1].rsplit(":", 1)[1], 16))
        except (OSError, ValueError, StopIteration):
            pass
    return used


def free_ports(n: int, taken: set[int]) -> list[int]:
    """n TCP ports below the ephemeral range, free on every address now."""
    rng = random.Random(os.getpid())
    used = _ports_in_use() | taken
    got = []
    for _ in range(5000):
        p = rng.randrange(20000, 30000)
        if p in used or p in got:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("0.0.0.0", p))
        except OSError:
            continue
        got.append(p)
        if len(got) == n:
            return got
    raise RuntimeError("no free TCP ports in 20000-29999")


def check_iperf(rc, out: str, err: str, seconds: float, remote: str, port: int,
                local_net=None) -> tuple[float | None, dict, str | None]:
    """(Gbit/s, extra, None) for a valid run, else (None, {}, why)."""
    j = None
    try:
        j = json.loads(out) if out.strip() else None
    except ValueError:
        # `docker run` may add a line of its own; the JSON is the object
        a, b = out.find("{"), out.rfind("}")
        if a >= 0 and b > a:
            try:
                j = json.loads(out[a:b + 1])
            except ValueError:
                j = None
    if rc is None:
        return None, {}, f"timed out / could not run: {short(err, 200)}"
    if j is None:
        return None, {}, f"exit {rc}, no JSON on stdout: {short(out, 150)} {short(err, 200)}"
    if j.get("error"):
        return None, {}, f"exit {rc}, iperf3 error: {short(j['error'], 200)} {short(err, 150) if err.strip() else ''}"
    if rc != 0:
        return None, {}, f"exit {rc}: {short(err, 200)}"
    try:
        conns = j["start"]["connected"]
        ts = j["start"]["test_start"]
        end = j["end"]
        recv, sent = end["sum_received"], end["sum_sent"]
    except (KeyError, TypeError):
        return None, {}, "JSON lacks start.connected / end.sum_received / end.sum_sent"
    if len(conns) != 1 or ts.get("num_streams") != 1 or ts.get("protocol") != "TCP":
        return None, {}, f"want 1 TCP stream, got {len(conns)} connection(s), {ts.get('num_streams')} {ts.get('protocol')}"
    c = conns[0]
    if c.get("remote_host") != remote or c.get("remote_port") != port:
        return None, {}, f"connected to {c.get('remote_host')}:{c.get('remote_port')}, want {remote}:{port}"
    if local_net is not None:
        try:
            ok = ipaddress.ip_address(c.get("local_host", "")) in local_net
        except ValueError:
            ok = False
        if not ok:
            return None, {}, f"client address {c.get('local_host')} is not in the engine's subnet {local_net}"
    for what, s in (("receiver", recv), ("sender", sent)):
        if not s.get("bits_per_second") or s.get("bytes", 0) <= 0:
            return None, {}, f"{what} moved no data"
        if s.get("seconds", 0) < 0.9 * seconds:
            return None, {}, f"{what} ran {s.get('seconds', 0):.2f} s of {seconds} s"
    cpu = end.get("cpu_utilization_percent", {})
    extra = {"retransmits": sent.get("retransmits"),
             "sender_gbps": sent["bits_per_second"] / 1e9,
             "cpu_host": cpu.get("host_total"), "cpu_remote": cpu.get("remote_total")}
    return recv["bits_per_second"] / 1e9, extra, None


# ------------------------------------------------------------------ the comparison

def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    seconds = QUICK_SECONDS if ctx.quick else FULL_SECONDS
    rounds = min(ctx.args.runs, MAX_ROUNDS) if ctx.args.runs is not None else (QUICK_ROUNDS if ctx.quick else FULL_ROUNDS)
    res = Result(
        NAME, TITLE,
        "What the engines' container networking costs in bulk throughput, against the host's own loopback. "
        "Subjects: " + "; ".join(f"**{k}**: {v}" for k, v in SUBJECTS.items()) + ".",
        METHOD,
        {"seconds_per_run": seconds, "rounds": rounds, "streams": 1, "probe_seconds": PROBE_SECONDS,
         "order": "interleaved, rotated each round"},
        [dict(m) for m in METRICS],
        baseline=BASELINE,
    )
    for s in SUBJECTS:
        res.subject(s)
    details: dict = {"runs": {}, "host": {}}
    res.d["details"] = details

    def drop(name, why):
        if res.subject(name)["measured"]:
            res.not_measured(name, why)
            log(f"{NAME}: {name}: not measured: {why}")

    iperf_why = ctx.installer.ensure(["iperf3"])["iperf3"]
    iperf = which("iperf3")
    if iperf is None:
        for s in SUBJECTS:
            drop(s, iperf_why or "iperf3 not found")
        return res.finish(time.monotonic() - t_start)
    res.d["params"]["iperf3"] = (engines.tool_version([iperf, "--version"]) or "?").split(" (")[0]
    pre = engines.prerequisites(ctx, ["berth", "docker"])
    res.d["params"]["versions"] = pre["versions"]
    if "berth" in pre["how"]:
        res.d["params"]["berthd"] = pre["how"]["berth"]
    for e in ("berth", "docker"):
        if e in pre["why"]:
            drop(e, pre["why"][e])
    if res.subject("berth")["measured"] and not engines.berthd_has_networking(pre["berthd"]):
        drop("berth", f"{pre['berthd']} has no networking (no --firewall-table flag; built before commit 0e221b4?)")
    for tool in ("ip", "nft", "iptables"):
        if which(tool) is None:
            for e in ("berth", "docker"):
                drop(e, f"{tool} not found")
    try:
        bundle = ctx.busybox_bundle()
        rootfs, added = iperf3_rootfs(ctx.workdir, bundle.rootfs, iperf)
    except (NotAvailable, RuntimeError, OSError) as e:
        for s in ("berth", "docker"):
            drop(s, f"image: {e}")
        rootfs, added = None, []
    archive = image_id = None
    if rootfs:
        archive, image_id = engines.busybox_archive(
            ctx.workdir, rootfs, image=IMAGE, file_name="iperf3-image.tar",
            created_by="berth-bench: Debian busybox-static + applet symlinks + iperf3, the libraries ldd lists, "
                       "the dynamic loader")
        res.d["params"]["image"] = f"{IMAGE} {image_id} (busybox + {', '.join(added)})"

    before = netenv.snapshot()
    details["host"]["before"] = netenv.describe(before)
    eng: dict[str, engines.Engine] = {}
    servers: list[subprocess.Popen] = []
    own_bridges, own_tables = [], []
    target: dict = {}   # (subject, path) -> dict(argv, remote, port, net, env)
    probe_override: dict = {}
    active = {p: [] for p in PATHS}
    key_of = {"c2h": "c2h_gbps", "h2c": "h2c_gbps"}

    def fail(subj, path, why):
        if res.metric_measured(subj, key_of[path]):
            res.metric_not_measured(subj, key_of[path], why)
            log(f"{NAME}: {subj} {PATHS[path]}: not measured: {why}")
        if subj in active[path]:
            active[path].remove(subj)

    try:
        alloc = engines.subnet_allocator(ctx.pid)
        taken_ports: set[int] = set()
        # ---- dockerd first (it sets FORWARD to DROP), on a bridge the bench makes
        if res.subject("docker")["measured"]:
            dsub = alloc.next()
            dgw = str(dsub.network_address + 1)
            dbr = netenv.bridge_name(ctx.pid, "d", "n")
            own_bridges.append(dbr)
            err = netenv.make_bridge(dbr, f"{dgw}/{dsub.prefixlen}")
            if err:
                drop("docker", f"cannot create its bridge: {err}")
            else:
                e = engines.Dockerd(ctx.workdir, "net", ctx.pid, pre["dockerd"], pre["docker"], bridge=dbr)
                eng["docker"] = e
                try:
                    e.start()
                    note = e.load_image(archive, image_id, IMAGE)
                    if note:
                        res.note(note)
                    target["docker"] = {"gw": dgw, "net": dsub, "bridge": dbr}
                    details.setdefault("_nets", []).append(target["docker"])
                except (engines.EngineError, OSError) as ex:
                    drop("docker", f"could not start/load the image: {ex}")
        details["host"]["forward_policy_with_dockerd"] = netenv.forward_policy()
        # ---- berthd
        if res.subject("berth")["measured"]:
            bnet = engines.BerthNet(ctx.pid, "n")
            own_bridges.append(bnet.bridge)
            own_tables.append(bnet.table)
            e = engines.Berthd(ctx.workdir, "net", ctx.pid, pre["berthd"], pre["monitor"], pre["docker"], net=bnet)
            eng["berth"] = e
            try:
                e.start()
                note = e.load_image(archive, image_id, IMAGE)
                if note:
                    res.note(note)
                target["berth"] = {"gw": bnet.gateway, "net": bnet.subnet, "bridge": bnet.bridge,
                                   "table": bnet.table}
                details.setdefault("_nets", []).append(target["berth"])
            except (engines.EngineError, OSError) as ex:
                drop("berth", f"could not start/load the image: {ex}")
        for k in ("berth", "docker"):
            if k in target:
                e = eng[k]
                rc, out, err = e.sh("network", "inspect", "bridge", "--format",
                                    "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", timeout=30)
                got = out.split()
                if rc != 0 or len(got) < 2 or got[1].split("/")[0] != target[k]["gw"]:
                    drop(k, f"`network inspect bridge`: want gateway {target[k]['gw']}, got "
                            f"{short(out, 100) if rc == 0 else 'exit ' + str(rc) + ': ' + short(err, 200)}")
                    target.pop(k)
                else:
                    details["host"][f"{k}_bridge"] = f"{target[k]['bridge']} {got[0]} gateway {got[1]}"
        pol = details["host"]["forward_policy_with_dockerd"]
        if "berth" in target:
            n_exc = netenv.forward_exception_count(target["berth"]["table"])
            details["host"]["berth_forward_rules"] = n_exc
            if pol == "DROP":
                res.note(f"With dockerd running, iptables' FORWARD policy was DROP; berthd (started after it) had "
                         f"{n_exc} accept rule(s) `berth:{target['berth']['table']}` in that chain"
                         + (" (its two, as designed)." if n_exc == 2 else
                            " — expected 2 (iifname/oifname of its bridge): POSSIBLE BERTH BUG."))
            elif pol:
                res.note(f"With dockerd running, iptables' FORWARD policy stayed {pol}: dockerd 20.10 sets it to DROP "
                         f"only when it has to turn net.ipv4.ip_forward on itself, and it was already "
                         f"{before['sysctl'].get('net/ipv4/ip_forward')}; so berthd, which adds accept rules to that "
                         f"chain only when it drops by policy, had {n_exc} there. Neither measured path crosses "
                         "FORWARD anyway: container → host ends in the host's INPUT, and host → 127.0.0.1:PORT is "
                         "locally generated (OUTPUT + DNAT).")
        if not any(res.subject(s)["measured"] for s in SUBJECTS):
            return _finish(res, t_start, eng, servers, before, own_bridges, own_tables, details, active)

        # ---- host servers: one per engine gateway (container → host) and one on loopback
        def start_server(bind, port, tag):
            logf = open(os.path.join(ctx.workdir, f"iperf3-server-{tag}.log"), "ab")
            try:
                p = subprocess.Popen([iperf, "-s", "-B", bind, "-p", str(port)], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, close_fds=True, start_new_session=True)
            finally:
                logf.close()
            servers.append(p)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10:
                if p.poll() is not None:
                    return f"iperf3 -s -B {bind} exited {p.returncode}"
                if _listening(bind, port):
                    return None
                time.sleep(0.05)
            return f"iperf3 -s -B {bind} -p {port} not listening after 10 s"

        ports = free_ports(5, taken_ports)
        lo_port = ports[0]
        err = start_server("127.0.0.1", lo_port, "loopback")
        if err:
            drop("loopback", err)
        else:
            for p in PATHS:
                target[("loopback", p)] = {"argv": [iperf, "-c", "127.0.0.1", "-p", str(lo_port)],
                                           "remote": "127.0.0.1", "port": lo_port, "net": None, "env": None}
        for i, k in enumerate(("berth", "docker")):
            if k not in target:
                continue
            e, t = eng[k], target[k]
            # container → host
            hp = ports[1 + 2 * i]
            err = start_server(t["gw"], hp, f"{k}-gw")
            if err:
                fail(k, "c2h", err)
            else:
                target[(k, "c2h")] = {"argv": e.cli("run", "--rm", "--pull", "never", IMAGE,
                                                    "iperf3", "-c", t["gw"], "-p", str(hp)),
                                      "remote": t["gw"], "port": hp, "net": t["net"], "env": e.env}
            # host → container: a server in a container behind a published port
            pp = ports[2 + 2 * i]
            rc, out, err = e.sh("run", "-d", "--pull", "never", "--name", f"{ID_PREFIX}{ctx.pid}-iperf3-{k}",
                                "-p", f"{pp}:{CTR_PORT}", IMAGE, "iperf3", "-s", "-p", str(CTR_PORT), timeout=60)
            if rc != 0:
                fail(k, "h2c", f"`run -d -p {pp}:{CTR_PORT} … iperf3 -s` failed (exit {rc}): {short(err, 300)}")
            else:
                target[(k, "h2c")] = {"argv": [iperf, "-c", "127.0.0.1", "-p", str(pp)],
                                      "remote": "127.0.0.1", "port": pp, "net": None, "env": None}
                probe_override[(k, "h2c")] = READY_TIMEOUT
                details["host"][f"{k}_published"] = f"127.0.0.1:{pp} → container :{CTR_PORT}"

        def one(subj, path, secs):
            t = target[(subj, path)]
            argv = t["argv"] + ["-t", str(secs), "-J", "--connect-timeout", "5000"]
            rc, out, err = sh(argv, timeout=secs + RUN_SLACK, env=t["env"])
            return check_iperf(rc, out, err, secs, t["remote"], t["port"], t["net"])

        # ---- probes
        for path in PATHS:
            for subj in SUBJECTS:
                if not res.subject(subj)["measured"] or (subj, path) not in target:
                    if res.subject(subj)["measured"] and res.metric_measured(subj, key_of[path]):
                        fail(subj, path, "not set up")
                    continue
                deadline = time.monotonic() + probe_override.get((subj, path), 0)
                while True:
                    v, _, why = one(subj, path, PROBE_SECONDS)
                    if why is None or time.monotonic() > deadline:
                        break
                    time.sleep(0.3)
                if why:
                    fail(subj, path, f"probe run: {why}")
                    if subj == "berth" and path == "c2h" and "docker" in eng:
                        res.note("**berth's container → host path failed while dockerd was running** "
                                 f"({why}): this looks like a Berth networking bug.")
                else:
                    active[path].append(subj)
                    details["runs"].setdefault(f"{subj} {path} probe", round(v, 2))

        log(f"{NAME}: {rounds} rounds × {seconds} s per run over "
            + "; ".join(f"{PATHS[p]}: {', '.join(active[p]) or 'nothing'}" for p in PATHS))
        extras: dict = {}
        for r in range(rounds):
            for path in PATHS:
                for subj in rotated(list(active[path]), r):
                    v, x, why = one(subj, path, seconds)
                    if why:
                        fail(subj, path, f"timed run {r + 1}: {why}")
                        if subj == "berth" and path == "c2h" and "docker" in eng:
                            res.note("**berth's container → host path failed while dockerd was running** "
                                     f"({why}): this looks like a Berth networking bug.")
                        continue
                    res.add(subj, key_of[path], v)
                    extras.setdefault((subj, path), []).append(x)
            log(f"{NAME}: round {r + 1}/{rounds}")
        for (subj, path), xs in extras.items():
            if not res.metric_measured(subj, key_of[path]):
                continue
            d = {}
            for k in ("retransmits", "sender_gbps", "cpu_host", "cpu_remote"):
                vals = [x[k] for x in xs if x.get(k) is not None]
                if vals:
                    d[k] = round(statistics.median(vals), 2)
            details["runs"][f"{subj} {path}"] = d
        return _finish(res, t_start, eng, servers, before, own_bridges, own_tables, details, active)
    except BaseException:
        _cleanup(res, eng, servers, before, own_bridges, own_tables, details)
        raise


def _cleanup(res, eng, servers, before, own_bridges, own_tables, details) -> None:
    for p in servers:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
    servers.clear()
    for k in ("berth", "docker"):  # berthd first: dockerd's FORWARD chain still holds its rules
        e = eng.pop(k, None)
        if e is not None:
            for n in e.stop():
                res.note(n)
            if getattr(e, "net_removed", None):
                details["host"]["berth_removed"] = e.net_removed
    r = netenv.restore(before, own_bridges, own_tables, [t["net"] for t in details.get("_nets", [])])
    own_bridges.clear()
    own_tables.clear()
    details.pop("_nets", None)
    details["host"]["cleanup_actions"] = r["actions"]
    details["host"]["cleanup_left_alone"] = r["left_alone"]
    details["host"]["after"] = netenv.describe(netenv.snapshot())
    netenv.log_result(r, NAME)
    for n in netenv.cleanup_notes(r):
        res.note(n)
    left = [pid for pid, (_pp, comm, cmd) in engines.proc_table().items()
            if comm == "docker-proxy" and any(t in cmd for t in ("-container-port 5201",))]
    if left:
        res.note(f"{len(left)} docker-proxy process(es) for port 5201 still ran after dockerd stopped (pids "
                 f"{', '.join(map(str, left))})")


def _finish(res, t_start, eng, servers, before, own_bridges, own_tables, details, active) -> dict:
    _cleanup(res, eng, servers, before, own_bridges, own_tables, details)
    out = res.finish(time.monotonic() - t_start)
    med = {}
    for s in out["subjects"]:
        if s["measured"]:
            for k, st in s["stats"].items():
                if st.get("median") is not None:
                    med[(s["name"], k)] = st["median"]
    for path, key in (("c2h", "c2h_gbps"), ("h2c", "h2c_gbps")):
        b, d, lo = med.get(("berth", key)), med.get(("docker", key)), med.get(("loopback", key))
        parts = [f"{n} {v:.2f}" for n, v in (("berth", b), ("docker", d), ("loopback", lo)) if v is not None]
        if not parts:
            continue
        rat = []
        if b is not None and d:
            rat.append(f"berth ÷ docker {b / d:.2f}×")
        if b is not None and lo:
            rat.append(f"berth ÷ loopback {b / lo:.2f}×")
        if d is not None and lo:
            rat.append(f"docker ÷ loopback {d / lo:.2f}×")
        x = []
        for subj in ("berth", "docker", "loopback"):
            r = details["runs"].get(f"{subj} {path}")
            if r:
                x.append(f"{subj}: retransmits {r.get('retransmits', '–')}, CPU client {r.get('cpu_host', '–')}% / "
                         f"server {r.get('cpu_remote', '–')}%")
        res.note(f"{PATHS[path]} (Gbit/s, median): " + ", ".join(parts)
                 + (f"; {', '.join(rat)}" if rat else "") + "."
                 + (f" Per run (median): {'; '.join(x)} (iperf3's own CPU figures; retransmits are the "
                    "client socket's — through docker-proxy only the loopback leg to the proxy)." if x else ""))
    h = details["host"]
    if h.get("forward_policy_with_dockerd"):
        res.note(f"Host before: {h.get('before')}. While dockerd ran: FORWARD policy "
                 f"{h.get('forward_policy_with_dockerd')}. Bridges: "
                 + "; ".join(f"{k} {h[k + '_bridge']}" for k in ("berth", "docker") if h.get(k + "_bridge")) + ".")
    return out
