"""engine-run: `run --rm --network none busybox true` end to end through the
CLI: berth's CLI and the docker CLI against berthd, the docker CLI against
dockerd 20.10, and podman (crun, runc),
interleaved; plus the same API calls without the CLI (berthd, dockerd) and the
OCI-runtime floor (berth-runtime run of the same rootfs), to show where the time
goes."""

from __future__ import annotations

import gc
import os
import statistics
import time

from .. import dockerapi, engines
from ..bundle import PROBE_EXIT, PROBE_MARKER
from ..context import Context, NotAvailable
from ..proc import Spawner
from ..result import Result
from ..util import log, short, which
from .runtime_run import rotated

NAME = "engine-run"
TITLE = "Engine: `run --rm --network none busybox true` end to end (berthd, dockerd 20.10, podman crun/runc)"
APT_PACKAGES = ["busybox-static", "podman", "crun", "runc"]
BASELINE = "berth"
RUN_TIMEOUT = 60.0   # per run; --quick: 30
TARGET_MS = 25.0     # issue #6: berth run <= 25 ms median
PING_COUNT = 200

# name -> what it is (report order)
SUBJECTS = {
    "berth": "berth CLI → berthd",
    "berthd-docker-cli": "docker CLI → berthd",
    "docker": "docker CLI → dockerd 20.10 (+ its containerd, containerd-shim-runc-v2, runc)",
    "podman-crun": "podman run --runtime crun",
    "podman-runc": "podman run --runtime runc",
    "berth-api": "the CLI's API calls made directly (no CLI) → berthd",
    "docker-api": "the CLI's API calls made directly (no CLI) → dockerd 20.10",
    "berth-runtime": "floor: `berth-runtime run` of the same rootfs (no engine, no image)",
}

METHOD = (
    "All engines run at once, each in private directories under the bench's work dir with a cgroup "
    "parent named after the bench: **berthd** (`--data-root/--exec-root/-H unix://` private, empty "
    "daemon.json), **dockerd** 20.10 (private `--data-root`, `--exec-root`, `-H unix://`, `--pidfile`, "
    "no `--containerd` so it starts its own managed containerd, `--bridge=none --iptables=false "
    "--ip-masq=false --userland-proxy=false`, cgroupfs driver, overlay2), **podman** (own `--root`, "
    "`--runroot`, `--tmpdir`, `--network-config-dir`, cgroupfs, `--events-backend none`, a private "
    "containers.conf and registries.conf; one store per runtime). **berth** is Berth's own CLI (`berth -H unix://SOCK run ...`, "
    "built with berthd); the docker CLI on PATH (v28) drives dockerd and, as **berthd-docker-cli**, berthd "
    "too, with `-H unix://SOCK` and an empty private DOCKER_CONFIG. Data roots / podman's "
    "--root are on the work dir's disk; exec roots (berthd, dockerd + containerd state and sockets) and "
    "podman's --runroot are each on a private tmpfs, as /run is in a real installation. The same image is "
    "loaded into every engine: a docker-archive the bench builds from the busybox bundle's rootfs "
    "(Debian's busybox-static + applet symlinks, Env PATH, Cmd sh), so the image id is identical "
    "everywhere (checked). The timed command is `docker -H … run --rm --network none --pull never busybox "
    "true` / `podman … --runtime R run --rm --network none --pull never --cgroup-parent P busybox true` "
    "(`--pull never` only guarantees nothing is fetched; the image is local). Before timing, each subject "
    "runs `sh -c 'echo marker pid=$$; exit 7'` and must print the marker as pid 1 and exit 7. "
    "**berth-api / docker-api** make the calls the CLI makes for `run --rm` directly on the unix socket "
    "from Python: POST create (AutoRemove, NetworkMode none), attach (HTTP upgrade, stdout+stderr), "
    "wait?condition=removed (headers first), start, then the wait result and the attach stream's end — "
    "so CLI time = subject − its -api subject. **berth-runtime** is the floor: `berth-runtime --root R run "
    "--bundle B` of the same rootfs with `runc spec`'s config (as in runtime-run): what any engine must at "
    "least spend. Rounds are interleaved, one run of each subject per round, the starting subject rotating; "
    "the first `warmup` rounds are discarded. Wall time is perf_counter_ns from spawn to reap (CLI "
    "subjects) or from the first request to the end of the attach stream (-api subjects). A failed or "
    "timed-out run ends that subject's measurement. Podman's containers get the bench's own nofile/nproc "
    "limits via containers.conf (podman's default 1048576 needs CAP_SYS_RESOURCE, which this sandbox "
    "lacks); rlimits do not affect timing. Afterwards: daemon RSS before/after the timed rounds (growth "
    "hints at per-container leaks), GET /_ping latency on a keep-alive connection, and `docker version` "
    "(CLI start + 2 requests) and `docker --version` (no request) as the CLI's fixed cost. After each "
    "-api run (clock stopped) the container is inspected: it must be 404 once wait?condition=removed returned."
)


class Subject:
    def __init__(self, name: str):
        self.name = name
        self.usable = True
        self.run = None      # callable(i, probe: bool) -> (wall_ms, error or None, extra)


def _median(v):
    return statistics.median(v) if v else None


def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    n_runs = ctx.args.runs if ctx.args.runs is not None else (10 if ctx.quick else 50)
    warmup = ctx.args.warmup if ctx.args.warmup is not None else (3 if ctx.quick else 5)
    timeout = 30.0 if ctx.quick else RUN_TIMEOUT
    res = Result(
        NAME, TITLE,
        "What a user waits for: one complete `run --rm` of a trivial container from the CLI, "
        "image already local, no network. Subjects: " + "; ".join(f"**{k}**: {v}" for k, v in SUBJECTS.items()) + ".",
        METHOD,
        {"runs": n_runs, "warmup": warmup, "timeout_s": timeout, "order": "interleaved, rotated each round"},
        [{"key": "wall_ms", "label": "wall time per run", "unit": "ms", "better": "lower"}],
        baseline=BASELINE,
    )
    subjects = {n: Subject(n) for n in SUBJECTS}
    for n in SUBJECTS:
        res.subject(n)

    def drop(name: str, why: str):
        s = subjects[name]
        if s.usable:
            s.usable = False
            res.not_measured(name, why)
            log(f"{NAME}: {name}: not measured: {why}")

    pre = engines.prerequisites(ctx, ["berth", "docker", "podman"])
    res.d["params"]["versions"] = pre["versions"]
    if "berth" in pre["how"]:
        res.d["params"]["berthd"] = pre["how"]["berth"]
    for eng, names in (("berth", ["berth", "berthd-docker-cli", "berth-api"]), ("docker", ["docker", "docker-api"]),
                       ("podman", ["podman-crun", "podman-runc"])):
        if eng in pre["why"]:
            for n in names:
                drop(n, pre["why"][eng])
    for rt in ("crun", "runc"):
        if which(rt) is None:
            drop(f"podman-{rt}", f"{rt} not installed")
    if "berth" not in pre["why"] and not pre.get("berth_cli"):
        drop("berth", "the berth CLI was not found next to berthd (set BERTH_CLI)")
    floor_rt = ctx.runtime("berth")
    if not floor_rt.usable:
        drop("berth-runtime", floor_rt.reason)

    try:
        bundle = ctx.busybox_bundle()
    except NotAvailable as e:
        for n in SUBJECTS:
            drop(n, str(e))
        return res.finish(time.monotonic() - t_start)
    archive, image_id = engines.busybox_archive(ctx.workdir, bundle.rootfs)
    res.d["params"]["image_id"] = image_id

    spawner = Spawner(ctx.workdir, NAME)
    eng: dict[str, engines.Engine] = {}
    phases: dict[str, dict[str, list]] = {"berth-api": {}, "docker-api": {}}
    still_there: dict[str, int] = {}
    probe_cmd = ["sh", "-c", f'echo "{PROBE_MARKER} pid=$$"; exit {PROBE_EXIT}']
    want_line = f"{PROBE_MARKER} pid=1"
    try:
        # ---- engines up, image in
        specs = []
        if subjects["berth"].usable:
            specs.append(("berth", lambda: engines.Berthd(ctx.workdir, "run", ctx.pid, pre["berthd"],
                                                          pre["monitor"], pre["docker"], berth_cli=pre["berth_cli"]),
                          ["berth", "berthd-docker-cli", "berth-api"]))
        if subjects["docker"].usable:
            specs.append(("docker", lambda: engines.Dockerd(ctx.workdir, "run", ctx.pid, pre["dockerd"],
                                                            pre["docker"]), ["docker", "docker-api"]))
        for rt in ("crun", "runc"):
            if subjects[f"podman-{rt}"].usable:
                def mk(rt=rt):
                    p = engines.Podman(ctx.workdir, f"run-{rt}", ctx.pid, pre["podman"])
                    p.runtime = rt
                    return p
                specs.append((f"podman-{rt}", mk, [f"podman-{rt}"]))
        for key, make, names in specs:
            e = make()
            eng[key] = e
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
                for n in names:
                    drop(n, f"could not start/load the image: {ex}")

        # ---- the run functions
        def cli_run(key, via_docker_cli=False):
            e = eng[key]
            extra = ["--cgroup-parent", e.cgroup_parent] if isinstance(e, engines.Podman) else []
            cli = e.docker_cli if via_docker_cli else e.cli

            def one(i, probe):
                cmd = probe_cmd if probe else ["true"]
                argv = cli("run", "--rm", "--network", "none", "--pull", "never", *extra, "busybox", *cmd)
                o = spawner.run(argv, timeout, capture_stdout=probe, env=e.env)
                if probe:
                    if o.timed_out or o.rc != PROBE_EXIT or want_line not in o.stdout.splitlines():
                        return None, (f"probe: want exit {PROBE_EXIT} and '{want_line}', got "
                                      + (f"timeout {timeout:.0f}s" if o.timed_out else f"exit {o.rc}")
                                      + f", stdout '{short(o.stdout, 100)}', stderr '{short(o.stderr, 300)}'")
                    return o.wall_ns / 1e6, None
                if not o.ok:
                    return None, (f"timed out after {timeout:.0f}s" if o.timed_out else f"exit {o.rc}") \
                        + f": {short(o.stderr, 300)}"
                return o.wall_ns / 1e6, None
            return one

        def api_run(key, name):
            e = eng[key]

            def one(i, probe):
                try:
                    r = dockerapi.run_rm(e.sock, "busybox", probe_cmd if probe else ["true"], timeout)
                except (OSError, dockerapi.ApiError, ValueError) as ex:
                    return None, f"{type(ex).__name__}: {ex}"
                if probe:
                    if r["exit"] != PROBE_EXIT or want_line.encode() not in r["stream"]:
                        return None, f"probe: exit {r['exit']}, stream {r['stream'][:120]!r}"
                elif r["exit"] != 0:
                    return None, f"exit status {r['exit']}"
                if not probe and i >= warmup:
                    for k, v in r["phases_ms"].items():
                        phases[name].setdefault(k, []).append(v)
                # after the clock stopped: wait?condition=removed must mean removed
                try:
                    with dockerapi.Conn(e.sock, timeout) as c:
                        st, _ = c.request("GET", f"{dockerapi.API}/containers/{r['id']}/json")
                    if st != 404:
                        still_there[name] = still_there.get(name, 0) + 1
                except (OSError, dockerapi.ApiError):
                    pass
                return r["total_ms"], None
            return one

        floor_root = ctx.state_root(floor_rt, NAME) if subjects["berth-runtime"].usable else None

        def floor_run(i, probe):
            cid = ctx.container_id("berth", f"{NAME}-{i}")
            argv = [floor_rt.binary, "--root", floor_root, "run", "--bundle",
                    bundle.probe_path if probe else bundle.path, cid]
            o = spawner.run(argv, timeout, capture_stdout=probe)
            if probe:
                want = bundle.probe_expected()
                if o.timed_out or o.rc != PROBE_EXIT or want not in o.stdout.splitlines():
                    return None, f"probe: exit {o.rc}, stdout '{short(o.stdout, 100)}', stderr '{short(o.stderr, 300)}'"
                return o.wall_ns / 1e6, None
            if not o.ok:
                return None, (f"timed out after {timeout:.0f}s" if o.timed_out else f"exit {o.rc}") \
                    + f": {short(o.stderr, 300)}"
            return o.wall_ns / 1e6, None

        for name in ("berth", "docker", "podman-crun", "podman-runc"):
            if subjects[name].usable:
                subjects[name].run = cli_run(name)
        if subjects["berthd-docker-cli"].usable:
            subjects["berthd-docker-cli"].run = cli_run("berth", via_docker_cli=True)
        if subjects["berth-api"].usable:
            subjects["berth-api"].run = api_run("berth", "berth-api")
        if subjects["docker-api"].usable:
            subjects["docker-api"].run = api_run("docker", "docker-api")
        if subjects["berth-runtime"].usable:
            subjects["berth-runtime"].run = floor_run

        active = [s for s in subjects.values() if s.usable]
        for s in list(active):
            _, err = s.run("probe", True)
            if err:
                drop(s.name, err)
                active.remove(s)
        if floor_root:
            ctx.sweep_root(floor_root)

        def daemon_mem():
            out = {}
            for key in ("berth", "docker"):
                if key in eng and eng[key].started:
                    m = eng[key].memory({p: c for p, c in eng[key].processes().items()
                                         if c in ("berthd", "dockerd", "containerd")})
                    out[key] = round(m["rss"] / 1024, 1)
            return out
        mem_before = daemon_mem()

        log(f"{NAME}: {warmup} warm-up + {n_runs} timed rounds over {', '.join(s.name for s in active) or 'nothing'}")
        gc.disable()
        try:
            for i in range(warmup + n_runs):
                for s in rotated(active, i):
                    if not s.usable:
                        continue
                    ms, err = s.run(i, False)
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
        mem_after = daemon_mem()

        # ---- where the time goes
        for key, e in eng.items():
            if not e.started:
                continue
            left = e.container_ids()
            if left:
                res.note(f"{key}: {len(left)} container(s) still existed after the runs (`--rm` should remove them)")
        if floor_root:
            left = ctx.sweep_root(floor_root)
            if left:
                res.note(f"berth-runtime: {len(left)} container(s) left in its state root; removed")
        extra = {}
        for key in ("berth", "docker"):
            if key not in eng or not eng[key].started or not subjects[key].usable and not subjects[f"{key}-api"].usable:
                continue
            e = eng[key]
            try:
                pings = dockerapi.request_latency(e.sock, "GET", "/_ping", PING_COUNT)
                lists = dockerapi.request_latency(e.sock, "GET", f"{dockerapi.API}/containers/json?all=1", 50)
                extra[key] = {"ping_ms": _median(pings), "list_ms": _median(lists)}
            except (OSError, dockerapi.ApiError) as ex:
                extra[key] = {"error": str(ex)}
            clis = {"docker": (e.docker, ["-H", f"unix://{e.sock}"])}
            if isinstance(e, engines.Berthd) and e.berth_cli:
                clis["berth"] = (e.berth_cli, ["-H", f"unix://{e.sock}"])
            for cname, (binary, host) in clis.items():
                vers, bare = [], []
                for _ in range(5 if ctx.quick else 10):
                    o = spawner.run([binary, *host, "version", "--format", "{{.Server.Version}}"], 30, env=e.env)
                    if o.ok:
                        vers.append(o.wall_ns / 1e6)
                    o = spawner.run([binary, "--version"], 30, env=e.env)
                    if o.ok:
                        bare.append(o.wall_ns / 1e6)
                extra[key].setdefault("cli", {})[cname] = {"version_ms": _median(vers), "bare_ms": _median(bare)}
            extra[key]["rss_before_mib"] = mem_before.get(key)
            extra[key]["rss_after_mib"] = mem_after.get(key)
        res.d["details"] = {"daemons": extra}
        for name, count in still_there.items():
            res.note(f"{name}: in {count} run(s) the container could still be inspected after "
                     f"`wait?condition=removed` had returned (it should be gone by then)")
        for name in ("berth-api", "docker-api"):
            if phases[name]:
                res.d.setdefault("details", {})[f"{name}_phases_ms"] = {
                    k: round(_median(v), 2) for k, v in phases[name].items()}
    finally:
        spawner.close()
        for key, e in eng.items():
            for n in e.stop():
                res.note(n)

    out = res.finish(time.monotonic() - t_start)
    _notes(res, out, out.get("details", {}))
    return out


def _notes(res: Result, out: dict, details: dict) -> None:
    med = {s["name"]: s["stats"].get("wall_ms", {}).get("median") for s in out["subjects"] if s["measured"]}
    b = med.get("berth")
    if b is not None:
        res.note(f"Target (issue): berth run ≤ {TARGET_MS:.0f} ms median — measured {b:.1f} ms: "
                 + ("met" if b <= TARGET_MS else f"not met ({b / TARGET_MS:.1f}× the target)") + ".")
    peers = [f"{n} {med[n]:.0f} ms" for n in ("docker", "podman-crun", "podman-runc") if med.get(n) is not None]
    res.note("Issue's earlier measurements: docker 338–362 ms, podman 199–278 ms; here: "
             + (", ".join(peers) if peers else "no peer measured") + ".")
    for key in ("berth", "docker"):
        cli, api = med.get(key), med.get(f"{key}-api")
        ph = details.get(f"{key}-api_phases_ms")
        ex = details.get("daemons", {}).get(key, {})
        parts = []
        dcli = med.get("berthd-docker-cli") if key == "berth" else cli
        if cli is not None:
            parts.append(f"{key} CLI run {cli:.1f} ms")
        if api is not None:
            parts.append(f"the same API calls from Python {api:.1f} ms")
        if dcli is not None and api is not None:
            parts.append(f"docker CLI run {dcli:.1f} ms = those calls + {dcli - api:.1f} ms of docker CLI")
        if ph:
            parts.append("API phases (median): " + ", ".join(f"{k} {v:.1f}" for k, v in ph.items()))
        for cname, c in ex.get("cli", {}).items():
            if c.get("version_ms") is not None:
                parts.append(f"`{cname} version` (CLI start + requests) {c['version_ms']:.1f} ms")
            if c.get("bare_ms") is not None:
                parts.append(f"`{cname} --version` (CLI process alone, no request) {c['bare_ms']:.1f} ms")
        if ex.get("ping_ms") is not None:
            parts.append(f"GET /_ping {ex['ping_ms'] * 1000:.0f} µs, GET /containers/json {ex['list_ms'] * 1000:.0f} µs "
                         "(keep-alive, median)")
        if ex.get("rss_before_mib") is not None and ex.get("rss_after_mib") is not None:
            parts.append(f"daemon RSS {ex['rss_before_mib']:.1f} → {ex['rss_after_mib']:.1f} MiB over the timed rounds")
        if parts:
            res.note(f"Where {key}'s time goes: " + "; ".join(parts) + ".")
    f = med.get("berth-runtime")
    if f is not None and b is not None:
        res.note(f"Floor: berth-runtime run {f:.1f} ms, so berthd + CLI add {b - f:.1f} ms "
                 f"({b / f:.1f}× the floor).")
