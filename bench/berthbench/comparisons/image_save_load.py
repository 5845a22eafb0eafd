"""image-save-load: throughput of Berth's `save` (image → OCI-layout + docker-archive
tar) and `load` (tar → image store) for the image-pull test image."""

from __future__ import annotations

import os
import time

from .. import imagebench
from ..context import Context
from ..proc import Spawner, gnu_time, read_gnu_time_kib, with_gnu_time
from ..result import Result
from ..util import log, short

NAME = "image-save-load"
TITLE = "Image save and load throughput (Berth archive module) for the ~300 MB test image"
APT_PACKAGES = ["docker-registry", "time", "e2fsprogs"]
SUBJECT = "berth"
RUN_TIMEOUT = 300.0

METHOD = (
    "The image-pull test image is pulled once with `imagetool pull` into a store on a fresh "
    "ext4 file system (sparse file on a direct-I/O loop device). Each round then times `imagetool save STORE "
    "REF OUT.tar` (the archive is fsynced before the command exits) and `imagetool load NEWSTORE "
    "OUT.tar` into an empty store (blobs ingested, verified and fsynced, names recorded; layers "
    "are unpacked later, on first use). Throughput is the archive's size divided by the "
    "command's wall time (perf_counter_ns from spawn to reap); peak RSS is GNU time's %M. The "
    "first `warmup` rounds are discarded."
)


def run(ctx: Context) -> dict:
    t_start = time.monotonic()
    n_runs = ctx.args.runs if ctx.args.runs is not None else (3 if ctx.quick else 5)
    warmup = ctx.args.warmup if ctx.args.warmup is not None else (0 if ctx.quick else 1)
    res = Result(
        NAME, TITLE,
        "How fast Berth moves an image to and from a tar archive (`docker save` / `docker load`).",
        METHOD,
        {"runs": n_runs, "warmup": warmup, "timeout_s": RUN_TIMEOUT},
        [
            {"key": "save_mb_s", "label": "save throughput", "unit": "MB/s", "better": "higher"},
            {"key": "load_mb_s", "label": "load throughput", "unit": "MB/s", "better": "higher"},
            {"key": "save_rss_mib", "label": "save peak RSS", "unit": "MiB", "better": "lower"},
            {"key": "load_rss_mib", "label": "load peak RSS", "unit": "MiB", "better": "lower"},
        ],
        baseline=SUBJECT,
    )
    res.subject(SUBJECT)
    tool, how = imagebench.imagetool(ctx.args, os.path.join(ctx.results_dir, "build.log"))
    res.d["params"]["berth_binary"] = how
    if tool is None:
        res.not_measured(SUBJECT, how)
        return res.finish(time.monotonic() - t_start)
    if not os.access(imagebench.REGISTRY_BIN, os.X_OK):
        res.not_measured(SUBJECT, f"{imagebench.REGISTRY_BIN} missing (Debian package docker-registry)")
        return res.finish(time.monotonic() - t_start)
    time_bin = gnu_time()
    rss_file = os.path.join(ctx.workdir, f"{NAME}.time")
    if time_bin is None:
        res.metric_unavailable("save_rss_mib", "GNU time (/usr/bin/time) not installed")
        res.metric_unavailable("load_rss_mib", "GNU time (/usr/bin/time) not installed")

    meta = imagebench.make_image()
    registry = imagebench.Registry(ctx.workdir)
    spawner = Spawner(ctx.workdir, NAME)
    fs = imagebench.FreshFs(ctx.workdir, NAME)
    res.d["params"]["fresh_fs"] = "yes" if fs.fresh else f"no ({fs.why})"
    try:
        ref = registry.push(meta, "bench/big", "1")
        store = os.path.join(fs.path, "store")

        def cmd(argv):
            if time_bin is not None:
                argv = with_gnu_time(time_bin, rss_file, argv)
            o = spawner.run(argv, RUN_TIMEOUT)
            if not o.ok:
                why = f"timed out after {RUN_TIMEOUT:.0f}s" if o.timed_out else f"exit {o.rc}"
                raise RuntimeError(f"{' '.join(argv[-4:])}: {why}: {short(o.stderr, 300)}")
            kib = read_gnu_time_kib(rss_file) if time_bin is not None else None
            return o.wall_ns / 1e9, (kib / 1024 if kib else None)

        try:
            cmd([tool, "pull", ref, store])
            for i in range(warmup + n_runs):
                tar = os.path.join(fs.path, "image.tar")
                new_store = os.path.join(fs.path, f"loaded-{i}")
                save_s, save_rss = cmd([tool, "save", store, ref, tar])
                size_mb = os.path.getsize(tar) / 1e6
                load_s, load_rss = cmd([tool, "load", new_store, tar])
                if i == 0:
                    res.d["params"]["archive_mb"] = round(size_mb, 1)
                if i >= warmup:
                    res.add(SUBJECT, "save_mb_s", size_mb / save_s)
                    res.add(SUBJECT, "load_mb_s", size_mb / load_s)
                    if save_rss is not None:
                        res.add(SUBJECT, "save_rss_mib", save_rss)
                        res.add(SUBJECT, "load_rss_mib", load_rss)
                os.unlink(tar)
                imagebench.shutil.rmtree(new_store, ignore_errors=True)
                log(f"{NAME}: round {i + 1}/{warmup + n_runs}")
        except RuntimeError as e:
            res.not_measured(SUBJECT, f"failed: {e}")
    finally:
        spawner.close()
        registry.stop()
        fs.close()
    return res.finish(time.monotonic() - t_start)
