"""image-pull: pull a ~300 MB single-layer image from a registry on 127.0.0.1 and
unpack it, with Berth (imagetool example), podman, and skopeo + umoci, interleaved."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time

from .. import imagebench
from ..context import Context
from ..proc import Spawner, gnu_time, read_gnu_time_kib, with_gnu_time
from ..result import Result
from ..cleanup import unmount_under
from ..util import ID_PREFIX, log, short, which

NAME = "image-pull"
TITLE = "Image pull + unpack of a ~300 MB single-layer gzip image from a local registry"
APT_PACKAGES = ["docker-registry", "podman", "skopeo", "umoci", "time", "e2fsprogs"]
# berth-sequential: Berth without the download/unpack overlap, to show what it buys.
SUBJECTS = ["berth", "podman", "skopeo+umoci", "berth-sequential"]
BASELINE = "berth"
RUN_TIMEOUT = 300.0
REPO, TAG = "bench/big", "1"

METHOD = (
    "The image (one gzip layer, ~300 MB uncompressed: thousands of small text files, large "
    "text files and random-byte files; made once by a seeded generator and cached in "
    "/var/tmp/berth-bench) is pushed to Debian's docker-registry on a free 127.0.0.1 port. "
    "Each run of each subject gets a **fresh ext4 file system** (sparse file in the work dir on a "
    "direct-I/O loop device, made before the timer starts) holding everything the subject writes, so "
    "no run inherits another's dirty pages or freed inodes. **berth**: `imagetool pull REF "
    "STORE` (the `berth-image` example: opens a new image store, pulls with layers unpacked "
    "into snapshots while they download, records the image; everything fsynced/syncfs'd "
    "before it exits). **berth-sequential**: `imagetool pull-then-unpack REF STORE`, the same "
    "library without the overlap (every blob downloaded and stored, then the layer unpacked "
    "from the store), to show what the overlap buys. **podman**: `podman --root R --runroot RR --storage-driver overlay "
    "pull -q --tls-verify=false REF` (fresh storage each run). **skopeo+umoci**: `skopeo copy "
    "--src-tls-verify=false docker://REF oci:DIR:1` then `umoci unpack --image DIR:1 BUNDLE`; "
    "its time is the sum of both, its RSS the larger. Before timing, one run of each subject "
    "is checked: the image's first file must be in the unpacked tree with the right content. "
    "Rounds are interleaved, the starting subject rotating each round; the first `warmup` "
    "rounds are discarded. Wall time is measured around each command (perf_counter_ns from "
    "spawn to reap); peak RSS is GNU time's %M (ru_maxrss of the largest single process, "
    "children included). A failed or timed-out run ends that subject's measurement. Note: "
    "podman and umoci do not sync what they write; berth's time includes making the blob "
    "and the snapshot durable."
)


class Subject:
    def __init__(self, name: str):
        self.name = name
        self.usable = True
        self.reason = ""


def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    n_runs = ctx.args.runs if ctx.args.runs is not None else (3 if ctx.quick else 5)
    warmup = ctx.args.warmup if ctx.args.warmup is not None else (0 if ctx.quick else 1)
    res = Result(
        NAME, TITLE,
        "Time and memory to get an image from a registry into a usable unpacked form, as "
        "`docker pull` does (no container is created).",
        METHOD,
        {"runs": n_runs, "warmup": warmup, "timeout_s": RUN_TIMEOUT,
         "order": "interleaved, rotated each round"},
        [
            {"key": "wall_s", "label": "wall time of pull + unpack", "unit": "s", "better": "lower"},
            {"key": "maxrss_mib", "label": "peak RSS (ru_maxrss via GNU time)", "unit": "MiB",
             "better": "lower"},
        ],
        baseline=BASELINE,
    )
    subjects = {n: Subject(n) for n in SUBJECTS}
    for n in SUBJECTS:
        res.subject(n)

    def drop(s: Subject, why: str):
        s.usable, s.reason = False, why
        res.not_measured(s.name, why)
        log(f"{NAME}: {s.name}: not measured: {why}")

    tool, how = imagebench.imagetool(ctx.args, os.path.join(ctx.results_dir, "build.log"))
    res.d["params"]["berth_binary"] = how
    if tool is None:
        drop(subjects["berth"], how)
        drop(subjects["berth-sequential"], how)
    for n, need in (("podman", ["podman"]), ("skopeo+umoci", ["skopeo", "umoci"])):
        missing = [b for b in need if which(b) is None]
        if missing:
            drop(subjects[n], f"{', '.join(missing)} not installed")
    res.d["params"]["versions"] = {
        "podman": imagebench.tool_version(["podman", "--version"]),
        "skopeo": imagebench.tool_version(["skopeo", "--version"]),
        "umoci": imagebench.tool_version(["umoci", "--version"]),
    }
    time_bin = gnu_time()
    if time_bin is None:
        res.metric_unavailable("maxrss_mib", "GNU time (/usr/bin/time) not installed")
    if not os.access(imagebench.REGISTRY_BIN, os.X_OK):
        for s in subjects.values():
            if s.usable:
                drop(s, f"{imagebench.REGISTRY_BIN} missing (Debian package docker-registry)")
        return res.finish(time.monotonic() - t_start)

    meta = imagebench.make_image()
    res.d["params"].update({
        "image_files": meta["files"], "uncompressed_mb": round(meta["uncompressed_size"] / 1e6, 1),
        "compressed_mb": round(meta["layer_size"] / 1e6, 1),
    })
    registry = imagebench.Registry(ctx.workdir)
    spawner = Spawner(ctx.workdir, NAME)
    rss_file = os.path.join(ctx.workdir, f"{NAME}.time")
    try:
        ref = registry.push(meta, REPO, TAG)
        res.d["params"]["reference"] = ref

        def timed(argv):
            if time_bin is not None:
                argv = with_gnu_time(time_bin, rss_file, argv)
            o = spawner.run(argv, RUN_TIMEOUT)
            kib = read_gnu_time_kib(rss_file) if time_bin is not None else None
            return o, kib

        def one(s: Subject, n) -> tuple[float, float | None] | None:
            """One run in a fresh file system; (seconds, MiB) or None after a failure."""
            fs = imagebench.FreshFs(ctx.workdir, f"{NAME}-{s.name.replace('+', '-')}-{n}")
            if not fs.fresh:
                res.d["params"]["fresh_fs"] = f"no ({fs.why}): plain directories"
            # podman refuses a --runroot longer than 50 characters: a short one in /tmp,
            # named so that the bench's cleanup of dead runs finds it too.
            runroot = tempfile.mkdtemp(prefix=f"{ID_PREFIX}{os.getpid()}-run-")
            try:
                steps = []
                if s.name in ("berth", "berth-sequential"):
                    store = os.path.join(fs.path, "store")
                    steps.append([tool, "pull" if s.name == "berth" else "pull-then-unpack", ref, store])
                    check = os.path.join(store, "snapshots", meta["diff_id"].split(":", 1)[1])
                elif s.name == "podman":
                    root = os.path.join(fs.path, "root")
                    steps.append(["podman", "--root", root, "--runroot", runroot,
                                  "--storage-driver", "overlay", "pull", "-q", "--tls-verify=false", ref])
                    check = None  # found below among its layer directories
                else:
                    oci, bundle = os.path.join(fs.path, "oci"), os.path.join(fs.path, "bundle")
                    steps.append(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                                  f"oci:{oci}:1"])
                    steps.append(["umoci", "unpack", "--image", f"{oci}:1", bundle])
                    check = os.path.join(bundle, "rootfs")
                wall, rss = 0.0, None
                for argv in steps:
                    o, kib = timed(argv)
                    if not o.ok:
                        why = f"timed out after {RUN_TIMEOUT:.0f}s" if o.timed_out else f"exit {o.rc}"
                        drop(s, f"run {n}: {os.path.basename(argv[0])} failed ({why}): {short(o.stderr, 300)}")
                        return None
                    wall += o.wall_ns / 1e9
                    if kib is not None:
                        rss = max(rss or 0, kib / 1024)
                if n == "probe":
                    roots = [check] if check else glob.glob(os.path.join(fs.path, "root", "overlay", "*", "diff"))
                    if not any(imagebench.probe_ok(r, meta) for r in roots):
                        drop(s, f"probe: {meta['probe']['path']} is not in the unpacked tree "
                                f"(looked in {', '.join(roots) or 'nothing'})")
                        return None
                return wall, rss
            finally:
                fs.close()
                unmount_under(runroot)
                shutil.rmtree(runroot, ignore_errors=True)

        active = [s for s in subjects.values() if s.usable]
        for s in list(active):
            if one(s, "probe") is None:
                active.remove(s)
        log(f"{NAME}: {warmup} warm-up + {n_runs} timed rounds over "
            f"{', '.join(s.name for s in active) or 'nothing'}")
        for i in range(warmup + n_runs):
            k = i % len(active) if active else 0
            for s in active[k:] + active[:k]:
                if not s.usable:
                    continue
                got = one(s, i)
                if got is None or i < warmup:
                    continue
                res.add(s.name, "wall_s", got[0])
                if got[1] is not None:
                    res.add(s.name, "maxrss_mib", got[1])
            log(f"{NAME}: round {i + 1}/{warmup + n_runs}")
    finally:
        spawner.close()
        registry.stop()
    out = res.finish(time.monotonic() - t_start)
    base = next((s for s in out["subjects"] if s["name"] == BASELINE and s["measured"]), None)
    if base:
        for peer, r in out["ratios"].get("wall_s", {}).items():
            if r is not None:
                target = " (target: at least 3x)" if peer == "podman" else ""
                res.note(f"{BASELINE} is {1 / r:.1f}x as fast as {peer} (median wall time){target}")
        rss = base["stats"].get("maxrss_mib", {}).get("max")
        if rss is not None:
            res.note(f"{BASELINE} peak RSS: at most {rss:.1f} MiB over all timed runs (target: under 64 MiB)")
    return out
