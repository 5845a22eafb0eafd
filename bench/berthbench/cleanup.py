"""Finding and removing what the bench created: containers in its own state
roots, cgroups named after its container ids, its temp work dirs.

Everything is matched by the ID_PREFIX and by the pid of the bench process that
made it (ids look like berth-bench-<pid>-<tag>-<n>), so a concurrently running
bench, or anything else on the machine, is never touched."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import tempfile
import time

from .util import ID_PREFIX, cgroup_hierarchy_roots, log, mounts, sh

OWNER_FILE = "owner.json"
_ID_PID = re.compile(re.escape(ID_PREFIX) + r"(\d+)-")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ours_or_orphaned(name: str, me: int | None = None) -> bool:
    """True for an id/cgroup name made by this bench process, or by a bench
    process that no longer runs."""
    m = _ID_PID.match(name)
    if not m:
        return False
    pid = int(m.group(1))
    return pid == (me if me is not None else os.getpid()) or not pid_alive(pid)


# ------------------------------------------------------------ containers

def sweep_state_root(binary: str | None, root: str, me: int | None = None) -> list[str]:
    """Kill and delete every bench container found in `root`. Returns their ids."""
    ids = set()
    if binary and os.path.exists(binary):
        rc, out, _ = sh([binary, "--root", root, "list", "-q"], timeout=10)
        if rc == 0:
            ids.update(line.strip() for line in out.splitlines() if line.strip())
    try:
        ids.update(os.listdir(root))  # runc/crun keep <root>/<id>/
    except OSError:
        pass
    ids = sorted(i for i in ids if ours_or_orphaned(i, me))
    for cid in ids:
        if binary and os.path.exists(binary):
            sh([binary, "--root", root, "kill", cid, "KILL"], timeout=10)
            rc, _, err = sh([binary, "--root", root, "delete", "--force", cid], timeout=10)
            if rc != 0:
                sh([binary, "--root", root, "delete", cid], timeout=10)
    return ids


# ------------------------------------------------------------ cgroups

def _walk_dirs(top: str, max_depth: int = 8):
    """Yield directories under top (excluding top), parents before children."""
    stack = [(top, 0)]
    while stack:
        d, depth = stack.pop()
        if depth >= max_depth:
            continue
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        yield e.path
                        stack.append((e.path, depth + 1))
        except OSError:
            continue


def _kill_cgroup_procs(path: str) -> int:
    n = 0
    for f in ("cgroup.procs", "tasks"):
        try:
            with open(os.path.join(path, f)) as fh:
                pids = [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                n += 1
            except OSError:
                pass
    return n


def sweep_cgroups(me: int | None = None) -> list[str]:
    """Remove every cgroup directory named after a bench container id (ours or an
    orphaned run's), in every visible hierarchy. Processes still inside (only
    container processes of the bench can be there) are SIGKILLed first."""
    found = []
    for root in cgroup_hierarchy_roots():
        for d in _walk_dirs(root):
            if ours_or_orphaned(os.path.basename(d), me):
                found.append(d)
    removed = []
    for d in sorted(found, key=lambda p: p.count("/"), reverse=True):
        # children first (a runtime might nest cgroups below the container's)
        subs = sorted(_walk_dirs(d), key=lambda p: p.count("/"), reverse=True)
        for target in subs + [d]:
            for attempt in range(20):
                try:
                    os.rmdir(target)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if attempt == 0 or attempt == 10:
                        _kill_cgroup_procs(target)
                    time.sleep(0.05)
        if not os.path.exists(d):
            removed.append(d)
        else:
            log(f"could not remove cgroup {d}")
    return removed


# ------------------------------------------------------------ work dirs

def unmount_under(path: str) -> bool:
    """Lazily unmount anything mounted at or below path. True if none remain."""
    path = os.path.realpath(path)
    for _ in range(3):
        under = [mp for mp, _ in mounts() if mp == path or mp.startswith(path + "/")]
        if not under:
            return True
        for mp in sorted(set(under), key=len, reverse=True):
            sh(["umount", "-l", mp], timeout=10)
    return not [mp for mp, _ in mounts() if mp == path or mp.startswith(path + "/")]


def new_workdir() -> str:
    d = tempfile.mkdtemp(prefix=f"{ID_PREFIX}{os.getpid()}-")
    write_owner(d, {})
    return d


def write_owner(workdir: str, roots: dict) -> None:
    """roots: {state_root_path: runtime_binary} so an orphaned dir can be swept."""
    with open(os.path.join(workdir, OWNER_FILE), "w") as f:
        json.dump({"pid": os.getpid(), "roots": roots}, f)


def kill_processes_naming(path: str) -> int:
    """SIGKILL (by pid) every process whose command line names `path` or a file
    below it: engine daemons and their helpers (berthd, dockerd, containerd,
    shims, monitors, conmon) left behind by a bench run that died. A finished
    run has stopped its engines already, so this finds nothing then."""
    path = os.path.realpath(path)
    n = 0
    for e in os.listdir("/proc"):
        if not e.isdigit() or int(e) == os.getpid():
            continue
        try:
            with open(f"/proc/{e}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a == path or a.startswith(path + "/") or ("=" in a and a.split("=", 1)[1].startswith(path + "/"))
               for a in args):
            try:
                os.kill(int(e), signal.SIGKILL)
                n += 1
            except OSError:
                pass
    return n


def remove_workdir(workdir: str, me: int | None = None) -> None:
    n = kill_processes_naming(workdir)
    if n:
        log(f"cleanup: killed {n} leftover engine process(es) using {workdir}")
        time.sleep(0.5)
    try:
        with open(os.path.join(workdir, OWNER_FILE)) as f:
            owner = json.load(f)
    except (OSError, ValueError):
        owner = {"roots": {}}
    for root, binary in owner.get("roots", {}).items():
        ids = sweep_state_root(binary, root, me)
        if ids:
            log(f"cleanup: removed {len(ids)} leftover container(s) from {root}")
    if not unmount_under(workdir):
        log(f"cleanup: mounts remain under {workdir}; NOT deleting it")
        return
    shutil.rmtree(workdir, ignore_errors=True)


def sweep_orphaned_workdirs() -> int:
    """Clean up work dirs left by bench runs that died (their pid is gone)."""
    n = 0
    for d in glob.glob(os.path.join(tempfile.gettempdir(), ID_PREFIX + "*")):
        m = _ID_PID.match(os.path.basename(d))
        if not m or not os.path.isdir(d):
            continue
        if int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            log(f"cleanup: removing orphaned work dir {d}")
            remove_workdir(d, me=-1)
            n += 1
    return n
