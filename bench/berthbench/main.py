"""bench/run: orchestration (options, private mount namespace, installs,
comparisons, cleanup, results.json, chart, report.md)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback

from . import cleanup, netenv, report
from .chart_runner import forget_probe, make_chart, python_with_matplotlib
from .comparisons import ALL, BY_NAME
from .context import Context
from .packages import Installer
from .util import BENCH_DIR, ID_PREFIX, RUN_SCRIPT, cgroup_layout, loadavg, log, machine_info, mounts, sh, short, which

HANDOFF_ENV = "BERTH_BENCH_HANDOFF"


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark berth-runtime against runc and crun. Writes "
                    "bench/results/<date>/report.md and results.json and prints the report.",
        epilog="Environment: BERTH_RUNTIME=/path/to/binary skips the cargo build. "
               "CARGO_TARGET_DIR is honoured when locating the built binary.")
    ap.add_argument("names", nargs="*", metavar="NAME", help="comparisons to run (default: all; see --list)")
    ap.add_argument("--list", action="store_true", help="list comparison NAMEs and exit")
    ap.add_argument("--quick", action="store_true",
                    help="fewer runs (10), install nothing, build nothing: ~2 minutes at most")
    ap.add_argument("-n", "--runs", type=int, help="timed runs per runtime (default 50, --quick 10)")
    ap.add_argument("--warmup", type=int, help="discarded warm-up runs (default 5, --quick 3)")
    ap.add_argument("--no-build", action="store_true",
                    help="don't run cargo; use the existing target/release/berth-runtime")
    ap.add_argument("--no-install", action="store_true", help="don't apt-get install anything")
    ap.add_argument("--containers", type=int, metavar="N",
                    help="engine-idle: idle containers started per engine (default 50, --quick 10, at most 500)")
    ap.add_argument("--_in-ns", dest="in_ns", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.warmup is not None and args.warmup < 0:
        ap.error("--warmup must be >= 0")
    if args.containers is not None and not 1 <= args.containers <= 500:
        ap.error("--containers must be between 1 and 500")
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown NAME(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return args


def _results_dir() -> tuple[str, str]:
    now = datetime.datetime.now()
    base = os.path.join(BENCH_DIR, "results", now.strftime("%Y-%m-%d-%H%M%S"))
    d, i = base, 1
    while os.path.exists(d):
        i += 1
        d = f"{base}-{i}"
    os.makedirs(d)
    return d, now.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _handoff(update: dict) -> None:
    path = os.environ.get(HANDOFF_ENV)
    if not path:
        return
    data = {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        pass
    data.update(update)
    with open(path, "w") as f:
        json.dump(data, f)


# ------------------------------------------------------------ namespaces

def _needs_private_ns(layout: dict) -> bool:
    """Hybrid hosts: crun 1.8.1 refuses cgroup v1 + a cgroup2 mount, so all
    runtimes run where the cgroup2 mount is hidden. Pure v2 / legacy: nothing."""
    return layout["mode"] == "hybrid"


def _unmount_cgroup2(layout: dict) -> tuple[bool, str]:
    errs = []
    for mp in sorted(layout["v2_mounts"], key=len, reverse=True):
        rc, _, err = sh(["umount", mp], timeout=20)
        if rc != 0:
            errs.append(f"umount {mp}: {short(err, 200)}")
    left = [mp for mp, fs in mounts() if fs == "cgroup2"]
    if left:
        return False, "; ".join(errs) or f"cgroup2 still mounted at {', '.join(left)}"
    return True, ""


def run_in_private_ns(argv, args) -> int:
    """Re-exec this script under `unshare -m --propagation private`; afterwards
    sweep, from the host's view (cgroup2 visible again), cgroups of the run."""
    handoff = os.path.join("/tmp", f"{ID_PREFIX}{os.getpid()}-handoff.json")
    env = dict(os.environ, **{HANDOFF_ENV: handoff})
    unshare = which("unshare")
    if unshare is None:
        return measure(args, ns_error="unshare not found (util-linux); runtimes ran in the host "
                                      "mount namespace with hybrid cgroups")
    cmd = [unshare, "-m", "--propagation", "private", "--", sys.executable, RUN_SCRIPT, "--_in-ns", *argv]
    log("hybrid cgroups: re-running inside a private mount namespace without the cgroup2 mount")
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets ^C and cleans up
    try:
        p = subprocess.Popen(cmd, env=env)
        old_term = signal.signal(signal.SIGTERM, lambda *_: p.send_signal(signal.SIGTERM))
        rc = p.wait()
        signal.signal(signal.SIGTERM, old_term)
    finally:
        signal.signal(signal.SIGINT, old_int)
    try:
        with open(handoff) as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = None
    finally:
        try:
            os.unlink(handoff)
        except OSError:
            pass
    if state is None:  # the child never started: unshare itself failed
        return measure(args, ns_error=f"could not enter a private mount namespace "
                                      f"(`unshare -m` exit {rc}); runtimes ran with hybrid cgroups")
    removed = cleanup.sweep_cgroups(me=-1)  # the child is gone: its cgroups count as orphaned
    if removed:
        log(f"cleanup: removed {len(removed)} cgroup(s) visible only outside the namespace: "
            + ", ".join(removed[:5]))
    cleanup.sweep_orphaned_workdirs()
    rep = state.get("report")
    if rep and os.path.exists(rep):
        if removed:
            with open(rep, "a") as f:
                f.write(f"- Cleanup outside the namespace: removed {len(removed)} cgroup(s) in the "
                        f"cgroup2 hierarchy.\n")
        with open(rep) as f:
            sys.stdout.write(f.read())
        sys.stdout.flush()
    return rc


# ------------------------------------------------------------ the measuring run

def measure(args, ns_error: str | None = None) -> int:
    t0 = time.monotonic()
    layout = cgroup_layout()  # before any unmount: this is the host's layout
    load_start = loadavg()
    ns = {"private_mount_ns": False, "cgroup2_unmounted": False,
          "description": "the host mount namespace (no workaround needed for this cgroup mode)"}
    if ns_error:
        ns["description"] = ns_error
    if args.in_ns:
        _handoff({"started": True})
        ok, err = _unmount_cgroup2(layout)
        ns = {"private_mount_ns": True, "cgroup2_unmounted": ok,
              "description": "a private mount namespace (`unshare -m --propagation private`) in which "
                             + (f"the cgroup2 mount ({', '.join(layout['v2_mounts'])}) was unmounted, so "
                                "every runtime saw cgroup v1 only (Debian's crun 1.8.1 refuses hybrid mode)"
                                if ok else f"unmounting cgroup2 FAILED ({err}); crun may refuse to run")}
        if not ok:
            log(f"warning: {err}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    selected = [BY_NAME[n] for n in dict.fromkeys(args.names)] if args.names else list(ALL)
    orphan_dirs = cleanup.sweep_orphaned_workdirs()
    orphan_cgroups = cleanup.sweep_cgroups(me=-1)
    if orphan_cgroups:
        log(f"cleanup: removed {len(orphan_cgroups)} cgroup(s) left by earlier bench runs")
    orphan_net = netenv.sweep_orphans(me=-1)
    if orphan_net:
        log(f"cleanup: removed what earlier bench runs left in the host's network: {', '.join(orphan_net)}")
    results_dir, started = _results_dir()
    workdir = cleanup.new_workdir()
    log(f"results: {results_dir}; work dir: {workdir}")
    no_install_why = "--quick installs nothing" if args.quick else "--no-install given"
    installer = Installer(allowed=not (args.quick or args.no_install), why_not=no_install_why)
    ctx = Context(args, results_dir, workdir, installer)
    comparisons = []
    finished = False
    cleanup_summary = []
    if orphan_dirs or orphan_cgroups or orphan_net:
        cleanup_summary.append(f"before starting, removed what earlier interrupted bench runs left: "
                               f"{orphan_dirs} work dir(s), {len(orphan_cgroups)} cgroup dir(s)"
                               + (f", {', '.join(orphan_net)}" if orphan_net else ""))
    try:
        pkgs = [p for m in selected for p in getattr(m, "APT_PACKAGES", [])]
        installer.ensure(pkgs)  # one apt-get for everything up front
        for mod in selected:
            settle_writeback()
            log(f"== {mod.NAME}: {mod.TITLE}")
            t = time.monotonic()
            try:
                comparisons.append(mod.run(ctx))
            except Exception as e:  # noqa: BLE001 - one comparison's bug must not sink the rest
                log(f"{mod.NAME} crashed:\n{traceback.format_exc()}")
                comparisons.append({"name": mod.NAME, "title": mod.TITLE, "error": f"{type(e).__name__}: {e}",
                                    "subjects": [], "metrics": [], "ratios": {}, "notes": [],
                                    "seconds": round(time.monotonic() - t, 1)})
        finished = True
    finally:
        cleanup.remove_workdir(workdir, me=os.getpid())
        removed = cleanup.sweep_cgroups(me=os.getpid())
        net_left = netenv.sweep_orphans(me=os.getpid())  # normally nothing: each comparison cleans up
        if net_left:
            log(f"cleanup: removed network leftovers of this run: {', '.join(net_left)}")
            cleanup_summary.append(f"network leftovers of this run removed at the end: {', '.join(net_left)}")
        gone = not os.path.exists(workdir)
        cleanup_summary.append(
            ("temp work dir (bundles, state roots) removed" if gone else f"work dir {workdir} NOT removed")
            + f"; leftover containers killed+deleted by id prefix `{ID_PREFIX}{os.getpid()}-`"
            + f"; {len(removed)} cgroup dir(s) named after bench containers removed"
            + (" (the cgroup2 hierarchy, hidden in the namespace, is swept afterwards by the parent)"
               if args.in_ns else ""))
        if not finished:  # interrupted: don't leave an empty results dir behind
            try:
                os.rmdir(results_dir)
            except OSError:
                pass
        if removed:
            log(f"cleanup: removed cgroups {', '.join(removed[:5])}{' ...' if len(removed) > 5 else ''}")

    data = {
        "started": started,
        "command": "bench/run " + " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "--_in-ns"),
        "mode": "quick" if args.quick else "full",
        "duration_s": None,
        "machine": machine_info(layout),
        "load_average": {"start": load_start, "end": loadavg()},
        "namespace": ns,
        "runtimes": [rt.as_dict() for rt in ctx.all_runtimes()],
        "install": {"installed": installer.installed, "failed": installer.failed,
                    "apt_update_run": installer.updated},
        "comparisons": comparisons,
        "chart": {},
        "cleanup": {"summary": "; ".join(cleanup_summary)},
    }

    json_path = os.path.join(results_dir, "results.json")
    has_ratio = any(r is not None for c in comparisons for per in c.get("ratios", {}).values()
                    for r in per.values())
    if not has_ratio:
        data["chart"] = {"file": None, "note": "no berth-runtime ratios to chart (berth-runtime not measured)"}
    else:
        if python_with_matplotlib() is None and not (args.quick or args.no_install):
            installer.ensure(["python3-matplotlib"])
            forget_probe()
            data["install"]["installed"] = installer.installed
        if python_with_matplotlib() is None:
            data["chart"] = {"file": None, "note": "matplotlib is not importable"
                             + (" (--quick installs nothing)" if args.quick else "")}
    data["duration_s"] = round(time.monotonic() - t0, 1)
    with open(json_path, "w") as f:
        json.dump(data, f, indent=2)
    if has_ratio and not data["chart"]:
        ok, note = make_chart(json_path, os.path.join(results_dir, "ratios.png"))
        data["chart"] = {"file": "ratios.png" if ok else None, "note": note}
        with open(json_path, "w") as f:
            json.dump(data, f, indent=2)

    text = report.render(data)
    rep = os.path.join(results_dir, "report.md")
    with open(rep, "w") as f:
        f.write(text + "\n")
    log(f"wrote {rep}")
    if args.in_ns:
        _handoff({"report": rep})  # the parent prints it after its own cleanup
    else:
        print(text, flush=True)
    return 0


def settle_writeback() -> None:
    """Flush dirty pages before a comparison, so that the disk writes of the one before
    (image pulls, save/load) are not written back while this one is timed."""
    t = time.monotonic()
    os.sync()
    log(f"flushed dirty pages before the next comparison ({time.monotonic() - t:.1f} s)")


def main(argv) -> int:
    args = parse_args(argv)
    if args.list:
        width = max(len(m.NAME) for m in ALL)
        for m in ALL:
            print(f"{m.NAME:<{width}}  {m.TITLE}")
        return 0
    if os.geteuid() != 0:
        print("bench/run: must run as root (the runtimes need it)", file=sys.stderr)
        return 1
    if not args.in_ns and _needs_private_ns(cgroup_layout()):
        return run_in_private_ns(argv, args)
    return measure(args)
