"""OCI bundles built from Debian's static busybox. One bundle is shared by
every runtime in a comparison."""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass

from .util import sh, short, which

# `runc spec` output of runc 1.1.5, used only when runc is not installed.
RUNC_SPEC_FALLBACK = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for k in ("bounding", "effective", "permitted", "ambient")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}

# The probe proves a runtime really runs the container: the marker must be
# printed, the shell must be pid 1 of a new pid namespace, the hostname must be
# the config's, and the exit status 7 must come back as the `run` exit status.
PROBE_EXIT = 7
PROBE_MARKER = "berth-bench-probe"


@dataclass
class Bundle:
    path: str
    rootfs: str
    config: dict
    spec_source: str
    probe_path: str
    busybox: str
    applets: int

    def probe_expected(self) -> str:
        return f"{PROBE_MARKER} pid=1 host={self.config.get('hostname', '')}"


def base_spec(workdir: str) -> tuple[dict, str]:
    runc = which("runc")
    if runc:
        d = os.path.join(workdir, "spec-tmp")
        os.makedirs(d, exist_ok=True)
        rc, _, err = sh([runc, "spec", "--bundle", d], timeout=20)
        if rc == 0:
            with open(os.path.join(d, "config.json")) as f:
                spec = json.load(f)
            shutil.rmtree(d, ignore_errors=True)
            return spec, f"`{runc} spec`"
        shutil.rmtree(d, ignore_errors=True)
    return copy.deepcopy(RUNC_SPEC_FALLBACK), "built-in copy of `runc spec` (runc 1.1.5)"


def make_busybox_bundle(workdir: str, busybox: str) -> Bundle:
    path = os.path.join(workdir, "bundle")
    rootfs = os.path.join(path, "rootfs")
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "run"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(rootfs, "bin", "busybox"))
    os.chmod(os.path.join(rootfs, "bin", "busybox"), 0o755)
    rc, out, err = sh([busybox, "--list"], timeout=20)
    if rc != 0:
        raise RuntimeError(f"`{busybox} --list` failed: {short(err, 200)}")
    applets = 0
    for name in out.split():
        if name == "busybox" or "/" in name:
            continue
        link = os.path.join(rootfs, "bin", name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)  # relative: resolves inside the container
            applets += 1
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")

    spec, source = base_spec(workdir)
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    spec["root"]["path"] = "rootfs"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f, indent=2)

    # Same rootfs, same config except the command.
    probe_path = os.path.join(workdir, "probe-bundle")
    os.makedirs(probe_path, exist_ok=True)
    probe = copy.deepcopy(spec)
    probe["root"]["path"] = rootfs
    probe["process"]["args"] = [
        "/bin/sh", "-c", f'echo "{PROBE_MARKER} pid=$$ host=$(hostname)"; exit {PROBE_EXIT}']
    with open(os.path.join(probe_path, "config.json"), "w") as f:
        json.dump(probe, f, indent=2)
    return Bundle(path=path, rootfs=rootfs, config=spec, spec_source=source,
                  probe_path=probe_path, busybox=busybox, applets=applets)
