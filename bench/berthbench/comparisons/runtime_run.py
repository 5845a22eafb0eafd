"""runtime-run: `RUNTIME --root R run --bundle B <id>` of /bin/true, i.e. one
create + start + wait + delete, for berth-runtime, runc and crun, interleaved."""

from __future__ import annotations

import gc
import os
import time

from ..bundle import PROBE_EXIT
from ..context import Context, NotAvailable
from ..proc import Spawner, gnu_time, read_gnu_time_kib, with_gnu_time
from ..result import Result
from ..util import log, short

NAME = "runtime-run"
TITLE = "OCI runtime: `run` of /bin/true (create+start+wait+delete)"
APT_PACKAGES = ["runc", "crun", "busybox-static", "time"]
SUBJECTS = ["berth", "runc", "crun"]  # interleaving order within a round
RUN_TIMEOUT = 30.0        # seconds per `run`; --quick: 15

METHOD = (
    "Every runtime gets its own fresh state root (`--root`) and the same busybox bundle "
    "(rootfs = Debian's static busybox + relative applet symlinks; config.json = `runc spec` "
    "with args [\"/bin/true\"], terminal false). Before timing, each runtime runs a probe "
    "container (`sh -c 'echo marker pid=$$ host=$(hostname); exit 7'` on the same rootfs) and "
    "must print the marker, be pid 1, have the config's hostname and return exit status 7, so "
    "a runtime that does not really run the container is never timed. Then rounds are run with "
    "the runtimes interleaved, one run of each per round, the starting runtime rotating every "
    "round (berth runc crun, runc crun berth, crun berth runc, ...): the first `warmup` "
    "rounds are discarded, the next `runs` rounds are timed. **Wall time** is measured "
    "in-process with perf_counter_ns from just before spawning `RUNTIME --root R run --bundle B "
    "<unique id>` (stdin/stdout /dev/null) until it is reaped; it includes well under 1 ms of "
    "Python spawn overhead, the same for all runtimes. Every exit status is checked: one "
    "non-zero exit or timeout (`timeout_s`), in any phase, ends that runtime's measurement and it "
    "is reported as not measured, never as fast. **Peak RSS** comes from `rss_runs` further "
    "interleaved runs under GNU `/usr/bin/time -f %M` (wait4 ru_maxrss of the runtime process): "
    "the kernel reports the largest peak RSS of any *single* process among the runtime process "
    "itself and the descendants it reaped (runc: `runc run` and `runc init`, which execs the "
    "container's /bin/true; crun: crun and the container process it forks). It is a max over "
    "processes, not a sum, and misses processes reparented away from the runtime. Since exec "
    "keeps the pre-exec peak, it can't go below the `time` process's own fork image "
    "(the 'floor' in the parameters: GNU time running the host's /bin/true)."
)


def rotated(items, k):
    """Round k starts with the (k mod n)-th runtime: A B C, B C A, C A B, ... so
    no runtime always holds the same position in a round."""
    items = list(items)
    if not items:
        return items
    k %= len(items)
    return items[k:] + items[:k]


def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    n_runs = ctx.args.runs if ctx.args.runs is not None else (10 if ctx.quick else 50)
    warmup = ctx.args.warmup if ctx.args.warmup is not None else (3 if ctx.quick else 5)
    rss_runs = 3 if ctx.quick else 5
    timeout = 15.0 if ctx.quick else RUN_TIMEOUT
    res = Result(
        NAME, TITLE,
        "Cost of one complete container lifecycle of a trivial process through the OCI "
        "runtime CLI alone (no engine, no image handling).",
        METHOD,
        {"runs": n_runs, "warmup": warmup, "rss_runs": rss_runs, "timeout_s": timeout,
         "order": "interleaved, rotated each round"},
        [
            {"key": "wall_ms", "label": "wall time per run", "unit": "ms", "better": "lower"},
            {"key": "maxrss_mib", "label": "peak RSS of one run (ru_maxrss via GNU time)",
             "unit": "MiB", "better": "lower"},
        ],
    )
    rts = [ctx.runtime(tag) for tag in SUBJECTS]
    for rt in rts:
        res.subject(rt.name)
        if not rt.usable:
            res.not_measured(rt.name, rt.reason)

    try:
        bundle = ctx.busybox_bundle()
    except NotAvailable as e:
        for rt in rts:
            if rt.usable:
                res.not_measured(rt.name, str(e))
        return res.finish(time.monotonic() - t_start)
    res.d["params"]["bundle_config_from"] = bundle.spec_source
    res.d["params"]["busybox"] = bundle.busybox

    time_bin = gnu_time()
    rss_file = os.path.join(ctx.workdir, "gnu-time.out")
    if time_bin is None:
        res.metric_unavailable("maxrss_mib", "GNU time (/usr/bin/time) not installed"
                               + (" (--quick installs nothing)" if ctx.quick else ""))

    active = []
    spawners = {}
    roots = {}

    def fail(rt, phase, cid, o, exc=None):
        if exc is not None:
            why = f"cannot execute: {exc}"
        else:
            why = (f"timed out after {timeout:.0f}s" if o.timed_out else f"exit {o.rc}") \
                + f": {short(o.stderr, 400)}"
        res.not_measured(rt.name, f"failed: {phase} ({cid}): {why}")
        log(f"{rt.name}: {res.subject(rt.name)['reason']}")
        active.remove(rt)
        ctx.sweep_root(roots[rt.tag])

    def one(rt, cid, bundle_path, phase, wrap=None, capture=False):
        """Run one container; on failure record it and return None."""
        argv = [rt.binary, "--root", roots[rt.tag], "run", "--bundle", bundle_path, cid]
        if wrap:
            argv = wrap(argv)
        try:
            o = spawners[rt.tag].run(argv, timeout, capture_stdout=capture)
        except OSError as e:
            fail(rt, phase, cid, None, e)
            return None
        return o

    try:
        for rt in rts:
            if not rt.usable:
                continue
            roots[rt.tag] = ctx.state_root(rt, NAME)
            spawners[rt.tag] = Spawner(ctx.workdir, f"{NAME}-{rt.tag}")
            active.append(rt)
            # --- probe: proves the runtime really runs the container
            cid = ctx.container_id(rt.tag, "probe")
            o = one(rt, cid, bundle.probe_path, "probe", capture=True)
            if o is None:
                continue
            want = bundle.probe_expected()
            if o.timed_out or o.rc != PROBE_EXIT or want not in o.stdout.strip().splitlines():
                res.not_measured(
                    rt.name,
                    f"failed: probe container check (want exit {PROBE_EXIT} and stdout "
                    f"'{want}'; got " + (f"timeout after {timeout:.0f}s" if o.timed_out
                                         else f"exit {o.rc}")
                    + f", stdout '{short(o.stdout, 150)}', stderr '{short(o.stderr, 300)}')")
                log(f"{rt.name}: {res.subject(rt.name)['reason']}")
                active.remove(rt)
            if ctx.sweep_root(roots[rt.tag]) and rt in active:
                res.note(f"{rt.name}: the probe container was still in the state root after "
                         f"`run` returned; removed it.")

        log(f"{NAME}: {warmup} warm-up + {n_runs} timed rounds over "
            f"{', '.join(r.name for r in active) or 'nothing'}")
        gc.disable()
        try:
            for i in range(warmup + n_runs):
                phase = f"warm-up run {i}" if i < warmup else f"timed run {i - warmup}"
                for rt in rotated(active, i):
                    cid = ctx.container_id(rt.tag, i)
                    o = one(rt, cid, bundle.path, phase)
                    if o is None:
                        continue
                    if not o.ok:
                        fail(rt, phase, cid, o)
                        continue
                    if i >= warmup:
                        res.add(rt.name, "wall_ms", o.wall_ns / 1e6)
                if (i + 1) % 10 == 0:
                    log(f"{NAME}: round {i + 1}/{warmup + n_runs}")
        finally:
            gc.enable()

        if time_bin is not None and active:
            floor = Spawner(ctx.workdir, f"{NAME}-floor")
            fo = floor.run(with_gnu_time(time_bin, rss_file, ["/bin/true"]), timeout)
            floor.close()
            kib = read_gnu_time_kib(rss_file) if fo.ok else None
            res.d["params"]["rss_floor_mib"] = round(kib / 1024, 2) if kib else None
            log(f"{NAME}: {rss_runs} peak-RSS rounds under {time_bin}")
            for j in range(rss_runs):
                for rt in rotated(active, j):
                    cid = ctx.container_id(rt.tag, f"rss{j}")
                    o = one(rt, cid, bundle.path, f"RSS run {j}",
                            wrap=lambda a: with_gnu_time(time_bin, rss_file, a))
                    if o is None:
                        continue
                    kib = read_gnu_time_kib(rss_file)
                    if not o.ok:
                        fail(rt, f"RSS run {j}", cid, o)
                        continue
                    if kib is None:
                        res.metric_unavailable("maxrss_mib", f"could not read GNU time's output "
                                                             f"for {rt.name}")
                        continue
                    res.add(rt.name, "maxrss_mib", kib / 1024)

        for rt in active:
            leftover = ctx.sweep_root(roots[rt.tag])
            if leftover:
                res.note(f"{rt.name}: {len(leftover)} container(s) were still in its state root "
                         f"after `run` returned (`run` should delete them); removed them.")
    finally:
        for s in spawners.values():
            s.close()
    return res.finish(time.monotonic() - t_start)
