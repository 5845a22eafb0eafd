"""engine-idle: memory of an idle engine, memory added per idle container, and
the time to start N detached containers, for berthd, dockerd 20.10 (+ its
containerd and shims) and podman (conmon), one engine at a time."""

from __future__ import annotations

import os
import statistics
import time

from .. import engines
from ..context import Context, NotAvailable
from ..proc import Spawner
from ..result import Result
from ..util import ID_PREFIX, log, sh, short

NAME = "engine-idle"
TITLE = "Engine: idle daemon memory, memory per idle container, time to start N detached containers"
APT_PACKAGES = ["busybox-static", "podman", "crun"]
BASELINE = "berth"
SUBJECTS = {
    "berth": "berthd (driven by the berth CLI); per container: berth-monitor",
    "docker": "dockerd 20.10 + its containerd; per container: containerd-shim-runc-v2",
    "podman": "no daemon; per container: conmon (runtime crun)",
}
DEFAULT_N, QUICK_N, MAX_N = 50, 10, 500
SETTLE_S = 2.0          # after start, and after the N containers are up, before reading memory
CMD_TIMEOUT = 60.0      # one `run -d`
RM_TIMEOUT = 600.0      # one `rm -f` of all of them
MIB = 1024 * 1024
# issue targets
T_IDLE_MB = 30          # idle berthd RSS <= 30 MB
T_PER_MIB = 0.5         # per idle container <= 0.5 MiB
T_START_50_S = 1.5      # 50 detached starts <= 1.5 s

METHOD = (
    "One engine at a time, each in private directories with a cgroup parent named after the bench "
    "(same engine setup and the same busybox image as engine-run — exec roots and podman's runroot on "
    "private tmpfs mounts; podman uses crun, its default here). "
    "**Idle daemon memory**: the daemon is started, answers GET /_ping, then `settle_s` seconds pass and "
    "RSS and PSS (/proc/PID/smaps_rollup) are summed over the daemon's processes: berthd alone; dockerd + "
    "the containerd it started. Podman has no daemon (nothing resident when idle), so it has no idle "
    "numbers. **Per idle container**: the image is loaded and one `run --rm … true` warms the engine up; "
    "then *before* = Σ PSS of every engine process (daemon, containerd, and any berth-monitor / "
    "containerd-shim-runc-v2 / conmon — found by pid: processes whose command line names the engine's "
    "private directory) + Σ memory usage of the containers' cgroups (cgroup v1 memory.usage_in_bytes, v2 "
    "memory.current, of each container's own cgroup under the engine's cgroup parent: it holds the "
    "container's processes, their page cache and kernel memory; read from the exact counters — v1 "
    "memory.stat total_rss + total_cache + total_swap + memory.kmem.usage_in_bytes, v2 memory.stat anon + "
    "file + kernel + sock — because usage_in_bytes/memory.current are charged in per-CPU batches of up to "
    "64 pages) + bytes used in the engine's tmpfs run dirs "
    "(exec root / runroot: state files, config.json, sockets — memory that is in no process's PSS). Then N containers are started one after "
    "another with `run -d --network none --pull never --name … busybox sleep 3600` (**start time** = wall "
    "time from the first spawn to the last reap; every exit status checked, all N must be running "
    "afterwards), `settle_s` seconds pass, and *after* is read the same way. Memory per container = "
    "(after − before) / N; the notes split it into daemon growth, helper processes, container "
    "cgroups and tmpfs. PSS splits shared pages between the processes sharing them, so summing it does not count "
    "the shims' or monitors' shared binary pages N times (and so the figure falls a little as N grows). "
    "**Remove time**: one `rm -f` of all N ids (podman: `rm -f -t 0`, which kills at once as `docker rm -f` "
    "does; plain `podman rm -f` first waits 10 s for SIGTERM, which `sleep` as pid 1 ignores). "
    "Finally the engine is stopped and everything it made is removed. One round per engine (n = 1)."
)


def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    n = getattr(ctx.args, "containers", None) or (QUICK_N if ctx.quick else DEFAULT_N)
    n = max(1, min(n, MAX_N))
    res = Result(
        NAME, TITLE,
        "What an engine costs while nothing happens, and per container that just sits there. Subjects: "
        + "; ".join(f"**{k}**: {v}" for k, v in SUBJECTS.items()) + ".",
        METHOD,
        {"containers": n, "settle_s": SETTLE_S, "rounds": 1, "cmd_timeout_s": CMD_TIMEOUT},
        [
            {"key": "idle_rss_mib", "label": "idle daemon RSS, no containers", "unit": "MiB",
             "better": "lower"},
            {"key": "idle_pss_mib", "label": "idle daemon PSS, no containers", "unit": "MiB",
             "better": "lower"},
            {"key": "per_container_mib", "label": "memory added per idle container (Δ of Σ PSS + cgroups + tmpfs, ÷ N)",
             "unit": "MiB", "better": "lower"},
            {"key": "start_all_s", "label": f"time to start {n} detached containers, one after another",
             "unit": "s", "better": "lower"},
            {"key": "rm_all_s", "label": f"time to remove the {n} (one `rm -f`)", "unit": "s",
             "better": "lower"},
        ],
        baseline=BASELINE,
    )
    for s in SUBJECTS:
        res.subject(s)
    breakdown = {}
    pre = engines.prerequisites(ctx, list(SUBJECTS))
    res.d["params"]["versions"] = pre["versions"]
    if "berth" in pre["how"]:
        res.d["params"]["berthd"] = pre["how"]["berth"]
    usable = {}
    for s in SUBJECTS:
        if s in pre["why"]:
            res.not_measured(s, pre["why"][s])
        else:
            usable[s] = True
    try:
        bundle = ctx.busybox_bundle()
    except NotAvailable as e:
        for s in usable:
            res.not_measured(s, str(e))
        return res.finish(time.monotonic() - t_start)
    archive, image_id = engines.busybox_archive(ctx.workdir, bundle.rootfs)
    res.d["params"]["image_id"] = image_id
    mc = engines.memory_controller()
    res.d["params"]["cgroup_memory"] = f"{mc[0]}/…/{mc[1]}" if mc else None
    if mc is None:
        res.note("no memory cgroup controller is mounted: per-container memory counts engine processes only")

    spawner = Spawner(ctx.workdir, NAME)
    try:
        for name in SUBJECTS:
            if name not in usable:
                continue
            if name == "berth":
                e = engines.Berthd(ctx.workdir, "idle", ctx.pid, pre["berthd"], pre["monitor"], pre["docker"],
                                   berth_cli=pre.get("berth_cli"))
            elif name == "docker":
                e = engines.Dockerd(ctx.workdir, "idle", ctx.pid, pre["dockerd"], pre["docker"])
            else:
                e = engines.Podman(ctx.workdir, "idle", ctx.pid, pre["podman"])
            log(f"{NAME}: {name}: start, idle memory, {n} containers")
            try:
                why = _one_engine(ctx, res, e, name, n, archive, image_id, spawner, breakdown)
            except (engines.EngineError, OSError) as ex:
                why = f"{type(ex).__name__}: {ex}"
            finally:
                for note in e.stop():
                    res.note(note)
            if why:
                res.not_measured(name, why)
                log(f"{NAME}: {name}: not measured: {why}")
    finally:
        spawner.close()
    res.d["details"] = breakdown
    out = res.finish(time.monotonic() - t_start)
    _notes(res, out, n, breakdown)
    return out


def _one_engine(ctx, res, e: engines.Engine, name: str, n: int, archive: str, image_id: str,
                spawner: Spawner, breakdown: dict) -> str | None:
    """Measure one engine; returns why it could not be measured, or None."""
    bd = breakdown.setdefault(name, {})
    ready = e.start()
    bd["ready_s"] = round(ready, 2)
    daemons = {}
    if e.daemon_pids():
        time.sleep(SETTLE_S)
        daemons = {p: c for p, c in e.processes().items() if c in ("berthd", "dockerd", "containerd")}
        m = e.memory(daemons)
        res.add(name, "idle_rss_mib", m["rss"] / 1024)
        res.add(name, "idle_pss_mib", m["pss"] / 1024)
        bd["idle"] = {c: {"rss_mib": round(v["rss"] / 1024, 1), "pss_mib": round(v["pss"] / 1024, 1)}
                      for c, v in m["by_comm"].items()}
    note = e.load_image(archive, image_id)
    if note:
        res.note(note)
    if e.run_dir_note:
        res.note(e.run_dir_note)
    extra = ["--cgroup-parent", e.cgroup_parent] if isinstance(e, engines.Podman) else []
    o = spawner.run(e.cli("run", "--rm", "--network", "none", "--pull", "never", *extra, "busybox", "true"),
                    CMD_TIMEOUT, env=e.env)
    if not o.ok:
        return f"warm-up `run --rm … true` failed (exit {o.rc}): {short(o.stderr, 300)}"
    time.sleep(SETTLE_S / 2)

    def snapshot(ids):
        m = e.memory()
        cg, cg_usage, found = e.container_cgroups_bytes(ids)
        daemon_pss = sum(v["pss"] for c, v in m["by_comm"].items() if c in ("berthd", "dockerd", "containerd"))
        return {"pss_kib": m["pss"], "daemon_pss_kib": daemon_pss, "helper_pss_kib": m["pss"] - daemon_pss,
                "helpers": m["n"] - sum(v["n"] for c, v in m["by_comm"].items()
                                        if c in ("berthd", "dockerd", "containerd")),
                "cgroup_bytes": cg, "cgroup_usage_bytes": cg_usage, "cgroups_found": found, "by_comm": m["by_comm"],
                "tmpfs_bytes": e.tmpfs_bytes()}

    before = snapshot([])
    ids, per_start = [], []
    t0 = time.perf_counter_ns()
    for i in range(n):
        argv = e.cli("run", "-d", "--network", "none", "--pull", "never", *extra,
                     "--name", f"{ID_PREFIX}{ctx.pid}-idle-{e.tag}-{i}", "busybox", "sleep", "3600")
        o = spawner.run(argv, CMD_TIMEOUT, capture_stdout=True, env=e.env)
        if not o.ok:
            return (f"start {i + 1}/{n} failed: " + (f"timed out after {CMD_TIMEOUT:.0f}s" if o.timed_out
                                                     else f"exit {o.rc}") + f": {short(o.stderr, 300)}")
        cid = o.stdout.strip().splitlines()[-1] if o.stdout.strip() else ""
        ids.append(cid)
        per_start.append(o.wall_ns / 1e6)
    start_all = (time.perf_counter_ns() - t0) / 1e9
    rc, out, err = e.sh("ps", "-q", "--no-trunc", timeout=60)
    running = set(out.split()) if rc == 0 else set()
    missing = [c for c in ids if c not in running]
    if missing:
        return f"{len(missing)} of {n} containers not running after start (`ps`: exit {rc} {short(err, 200)})"
    time.sleep(SETTLE_S)
    after = snapshot(ids)
    partial = after["cgroups_found"] < n and engines.memory_controller() is not None
    if partial:
        res.note(f"{name}: found the memory cgroup of only {after['cgroups_found']} of {n} containers")
    d_pss = after["pss_kib"] - before["pss_kib"]
    d_cg = after["cgroup_bytes"] - before["cgroup_bytes"]
    d_tmpfs = after["tmpfs_bytes"] - before["tmpfs_bytes"]
    per = (d_pss * 1024 + d_cg + d_tmpfs) / n / MIB
    res.add(name, "per_container_mib", per)
    res.add(name, "start_all_s", start_all)
    bd.update({
        "per_container_mib": round(per, 3),
        "daemon_pss_growth_per_container_kib": round((after["daemon_pss_kib"] - before["daemon_pss_kib"]) / n, 1),
        "helper_pss_per_container_kib": round((after["helper_pss_kib"] - before["helper_pss_kib"]) / n, 1),
        "helper_processes": after["helpers"],
        "cgroup_per_container_kib": round(d_cg / n / 1024, 1),
        "cgroup_usage_file_per_container_kib": round(
            (after["cgroup_usage_bytes"] - before["cgroup_usage_bytes"]) / n / 1024, 1),
        "tmpfs_per_container_kib": round(d_tmpfs / n / 1024, 1),
        "cgroups_found": after["cgroups_found"],
        "per_start_ms": {"median": round(statistics.median(per_start), 1), "first": round(per_start[0], 1),
                         "last": round(per_start[-1], 1), "max": round(max(per_start), 1)},
        "after_by_comm": {c: {"n": v["n"], "pss_mib": round(v["pss"] / 1024, 2)} for c, v in after["by_comm"].items()},
        "partial_cgroups": partial,
    })
    t1 = time.perf_counter_ns()
    rc, _, err = sh(e.rm_force(ids), timeout=RM_TIMEOUT, env=e.env)
    rm_s = (time.perf_counter_ns() - t1) / 1e9
    if rc == 0:
        res.add(name, "rm_all_s", rm_s)
    else:
        res.note(f"{name}: `rm -f` of the {n} containers failed (exit {rc}): {short(err, 200)}")
    left = e.container_ids()
    if left:
        res.note(f"{name}: {len(left)} container(s) still listed after `rm -f`")
    return None


def _notes(res: Result, out: dict, n: int, bd: dict) -> None:
    med = {s["name"]: {k: v.get("median") for k, v in s["stats"].items()} for s in out["subjects"] if s["measured"]}
    res.note("podman has no daemon: nothing of it is resident while no container runs, so it has no idle "
             "numbers (its per-container figure includes conmon).")
    b = med.get("berth", {})
    t_idle_mib = T_IDLE_MB * 1e6 / MIB
    if b.get("idle_rss_mib") is not None:
        d = med.get("docker", {})
        res.note(f"Target (issue): idle berthd RSS ≤ {T_IDLE_MB} MB ({t_idle_mib:.1f} MiB) — measured "
                 f"{b['idle_rss_mib']:.1f} MiB: {'met' if b['idle_rss_mib'] <= t_idle_mib else 'not met'}. "
                 "Issue's earlier measurement: dockerd 81 MB + containerd 43 MB"
                 + (f"; here dockerd + containerd {d['idle_rss_mib']:.1f} MiB" if d.get("idle_rss_mib") else "")
                 + ".")
    if b.get("per_container_mib") is not None:
        here = ", ".join(f"{k} {med[k]['per_container_mib']:.2f} MiB" for k in ("docker", "podman")
                         if med.get(k, {}).get("per_container_mib") is not None)
        res.note(f"Target (issue): ≤ {T_PER_MIB} MiB per idle container — measured "
                 f"{b['per_container_mib']:.2f} MiB: {'met' if b['per_container_mib'] <= T_PER_MIB else 'not met'}. "
                 "Issue's earlier measurements: podman+conmon 0.9–1.3 MiB, docker+shim 4.0–4.7 MiB"
                 + (f"; here {here}" if here else "") + ".")
    if b.get("start_all_s") is not None:
        target = T_START_50_S * n / 50
        here = ", ".join(f"{k} {med[k]['start_all_s']:.2f} s" for k in ("docker", "podman")
                         if med.get(k, {}).get("start_all_s") is not None)
        res.note(f"Target (issue): 50 detached starts ≤ {T_START_50_S} s"
                 + (f" (scaled to N={n}: ≤ {target:.2f} s)" if n != 50 else "")
                 + f" — measured {b['start_all_s']:.2f} s for {n}: {'met' if b['start_all_s'] <= target else 'not met'}. "
                 "Issue's earlier measurements for 50: podman 7.4–8.4 s, docker 13.8–19.1 s"
                 + (f"; here ({n}) {here}" if here else "") + ".")
    for name, x in bd.items():
        if "per_container_mib" not in x:
            continue
        res.note(f"{name} per container: daemon PSS growth {x['daemon_pss_growth_per_container_kib']:.0f} KiB, "
                 f"helper processes {x['helper_pss_per_container_kib']:.0f} KiB ({x['helper_processes']} of them), "
                 f"container cgroups {x['cgroup_per_container_kib']:.0f} KiB ({x['cgroups_found']} found; "
                 f"{x['cgroup_usage_file_per_container_kib']:.0f} KiB by usage_in_bytes/memory.current), "
                 f"exec-root/runroot tmpfs {x['tmpfs_per_container_kib']:.0f} KiB; "
                 f"one start: median {x['per_start_ms']['median']:.0f} ms (first {x['per_start_ms']['first']:.0f}, "
                 f"last {x['per_start_ms']['last']:.0f}, max {x['per_start_ms']['max']:.0f}).")
