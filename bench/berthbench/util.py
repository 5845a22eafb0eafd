"""Small helpers shared by every comparison: logging, commands, statistics,
mount/cgroup inspection, machine description."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
RUN_SCRIPT = os.path.join(BENCH_DIR, "run")

# Every container id, state root, temp dir and cgroup the bench creates starts
# with this, so cleanup can find exactly what the bench made and nothing else.
ID_PREFIX = "berth-bench-"

_T0 = time.monotonic()


def log(msg: str) -> None:
    """Progress goes to stderr; stdout is reserved for the final report."""
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def sh(argv, timeout=60, input=None, env=None, cwd=None):
    """Run a command, never raising: returns (rc, stdout, stderr).

    rc is None when the command could not be started or timed out; the reason is
    then in stderr."""
    try:
        p = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        return p.returncode, p.stdout, p.stderr
    except FileNotFoundError as e:
        return None, "", f"not found: {e.filename}"
    except PermissionError as e:
        return None, "", f"cannot execute: {e}"
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return None, out, f"{err}\ntimed out after {timeout}s".strip()
    except OSError as e:
        return None, "", f"cannot run {argv[0]}: {e}"


def short(text: str, limit: int = 400) -> str:
    """One-line, bounded excerpt of command output for a report cell."""
    text = " ".join((text or "").split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text or "(no output)"


def which(name: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


# ---------------------------------------------------------------- statistics

def percentile(sorted_vals, q: float) -> float:
    """Linear-interpolated percentile (q in [0,100]) of an already sorted list."""
    if not sorted_vals:
        raise ValueError("empty")
    if len(sorted_vals) == 1:
        return float(sorted_vals[0])
    k = (len(sorted_vals) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return float(sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo))


def summarize(values) -> dict:
    vals = sorted(float(v) for v in values)
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "median": statistics.median(vals),
        "p90": percentile(vals, 90),
        "min": vals[0],
        "max": vals[-1],
        "mean": statistics.fmean(vals),
        "stdev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
    }


# ------------------------------------------------------------ mounts, cgroups

def _unescape_mount(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts():
    """[(mountpoint, fstype)] of this process's mount namespace, in mount order."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                lf, rf = left.split(), right.split()
                if len(lf) >= 5 and rf:
                    out.append((_unescape_mount(lf[4]), rf[0]))
    except OSError:
        pass
    return out


def cgroup_layout() -> dict:
    """Detect how cgroups are mounted: 'pure v2', 'hybrid' (v1 controllers plus a
    cgroup2 mount, usually /sys/fs/cgroup/unified), 'legacy' (v1 only) or 'none'."""
    ms = mounts()
    top = {}
    for mp, fs in ms:  # the last mount on a mountpoint wins
        top[mp] = fs
    v1 = sorted(mp for mp, fs in top.items() if fs == "cgroup")
    v2 = sorted(mp for mp, fs in top.items() if fs == "cgroup2")
    if top.get("/sys/fs/cgroup") == "cgroup2":
        mode = "pure v2"
    elif v1 and v2:
        mode = "hybrid"
    elif v1:
        mode = "legacy"
    elif v2:
        mode = "pure v2"
    else:
        mode = "none"
    return {"mode": mode, "v1_mounts": v1, "v2_mounts": v2}


def cgroup_hierarchy_roots():
    """Mountpoints of every cgroup hierarchy visible here (v1 and v2)."""
    seen = []
    for mp, fs in mounts():
        if fs in ("cgroup", "cgroup2") and mp not in seen:
            seen.append(mp)
    return seen


# ------------------------------------------------------------------- machine

def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def loadavg() -> str:
    parts = _read("/proc/loadavg").split()
    return " / ".join(parts[:3]) if len(parts) >= 3 else "unknown"


def machine_info(layout: dict) -> dict:
    cpuinfo = _read("/proc/cpuinfo")
    m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.M)
    osr = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', _read("/etc/os-release"), re.M)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {
        "cpu_model": m.group(1).strip() if m else platform.processor() or "unknown",
        "cores_online": os.cpu_count(),
        "cores_usable": usable,
        "memory_gib": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "arch": platform.machine(),
        "os": osr.group(1) if osr else platform.platform(),
        "python": sys.version.split()[0],
        "cgroup_mode": layout["mode"],
        "cgroup_v1_mounts": layout["v1_mounts"],
        "cgroup_v2_mounts": layout["v2_mounts"],
    }
