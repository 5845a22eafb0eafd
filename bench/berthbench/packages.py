"""Debian packages the comparisons need, installed with apt-get when missing
(never in --quick mode, never from anywhere but the configured Debian mirror)."""

from __future__ import annotations

import glob
import os
import struct

from .util import log, sh, short, which

PT_INTERP = 3


def is_static_elf(path: str) -> bool:
    """True if `path` is an ELF executable without a PT_INTERP program header
    (i.e. it needs no dynamic loader inside the container rootfs)."""
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if ident[:4] != b"\x7fELF":
                return False
            is64 = ident[4] == 2
            end = "<" if ident[5] == 1 else ">"
            hdr = f.read(64 - 16 if is64 else 52 - 16)
            if is64:
                phoff, = struct.unpack(end + "Q", hdr[16:24])
                phentsize, phnum = struct.unpack(end + "HH", hdr[38:42])
            else:
                phoff, = struct.unpack(end + "I", hdr[12:16])
                phentsize, phnum = struct.unpack(end + "HH", hdr[26:30])
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                p_type, = struct.unpack(end + "I", f.read(4))
                if p_type == PT_INTERP:
                    return False
            return True
    except (OSError, struct.error):
        return False


def static_busybox() -> str | None:
    for p in ("/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"):
        if os.path.isfile(p) and is_static_elf(p):
            return os.path.realpath(p)
    return None


def _dpkg_installed(pkg: str) -> bool:
    rc, out, _ = sh(["dpkg-query", "-W", "-f=${Status}", pkg], timeout=20)
    return rc == 0 and "install ok installed" in out


def _matplotlib_present() -> bool:
    from .chart_runner import forget_probe, python_with_matplotlib  # local: avoid cycle
    forget_probe()  # an install may just have happened
    return python_with_matplotlib() is not None


# How to tell whether what a package provides is already there (a peer may
# come from somewhere other than Debian, that's fine).
PRESENT = {
    "runc": lambda: which("runc") is not None,
    "crun": lambda: which("crun") is not None,
    "hyperfine": lambda: which("hyperfine") is not None,
    "busybox-static": lambda: static_busybox() is not None,
    "pkg-config": lambda: which("pkg-config") is not None,
    "libseccomp-dev": lambda: _dpkg_installed("libseccomp-dev"),
    "python3-matplotlib": _matplotlib_present,
}


class Installer:
    """apt-get install with a single lazy `apt-get update`, remembering outcomes."""

    def __init__(self, allowed: bool, why_not: str):
        self.allowed = allowed
        self.why_not = why_not
        self.updated = False
        self.failed: dict[str, str] = {}  # package -> reason it is not there
        self.installed: list[str] = []

    def present(self, pkg: str) -> bool:
        check = PRESENT.get(pkg)
        return check() if check else _dpkg_installed(pkg)

    def _apt(self, pkgs):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        return sh(["apt-get", "install", "-y", "--no-install-recommends", *pkgs], timeout=900, env=env)

    def _update(self):
        if self.updated:
            return
        self.updated = True
        log("apt-get update")
        rc, _, err = sh(["apt-get", "update"], timeout=600)
        if rc != 0:
            log(f"apt-get update failed: {short(err, 200)}")

    def ensure(self, pkgs) -> dict[str, str | None]:
        """Make sure each package is present. Returns {pkg: None if present, else reason}."""
        result: dict[str, str | None] = {}
        missing = []
        for p in dict.fromkeys(pkgs):
            if p in self.failed:
                result[p] = self.failed[p]
            elif self.present(p):
                result[p] = None
            else:
                missing.append(p)
        if not missing:
            return result
        if not self.allowed:
            for p in missing:
                result[p] = self.failed[p] = f"{p} not installed ({self.why_not})"
            return result
        if which("apt-get") is None:
            for p in missing:
                result[p] = self.failed[p] = f"{p} not installed and apt-get not available"
            return result
        # No package lists at all: an install cannot work, update first.
        if not glob.glob("/var/lib/apt/lists/*Packages*"):
            self._update()
        log(f"apt-get install -y {' '.join(missing)}")
        rc, _, err = self._apt(missing)
        if rc != 0 and not self.updated:
            self._update()
            rc, _, err = self._apt(missing)
        if rc != 0:
            # Retry one by one so one bad package doesn't sink the others.
            for p in missing:
                rc1, _, err1 = self._apt([p])
                if rc1 != 0:
                    self.failed[p] = f"{p} not installed; apt-get install failed: {short(err1, 300)}"
        for p in missing:
            if p in self.failed:
                result[p] = self.failed[p]
            elif self.present(p):
                result[p] = None
                self.installed.append(p)
            else:
                result[p] = self.failed[p] = f"{p} installed by apt-get but still not usable"
        return result
