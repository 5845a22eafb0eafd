"""The OCI runtimes under test: berth-runtime (built from this repo, or
$BERTH_RUNTIME) and its peers runc and crun (Debian packages)."""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass, field

from .util import REPO_DIR, log, sh, short, which


@dataclass
class Runtime:
    tag: str                   # short name used in container ids: berth, runc, crun
    name: str                  # display name
    binary: str | None = None
    version: str | None = None  # full `--version` output
    reason: str | None = None   # why it can't be measured (None: usable)
    info: dict = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.binary is not None and self.reason is None

    def as_dict(self) -> dict:
        return {
            "tag": self.tag,
            "name": self.name,
            "binary": self.binary,
            "version": self.version,
            "not_measured_reason": self.reason,
            **self.info,
        }


def _version(binary: str) -> str:
    rc, out, err = sh([binary, "--version"], timeout=20)
    text = (out or err).strip()
    if rc != 0 or not text:
        return f"(`--version` failed: {short(err or out, 200)})"
    return text


def _file_facts(binary: str) -> dict:
    st = os.stat(binary)
    h = hashlib.sha256()
    with open(binary, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {
        "binary_sha256": h.hexdigest()[:16],
        "binary_size_bytes": st.st_size,
        "binary_mtime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
        .strftime("%Y-%m-%d %H:%M:%SZ"),
    }


def peer(tag: str, installer) -> Runtime:
    rt = Runtime(tag=tag, name=tag)
    why = installer.ensure([tag])[tag]
    path = which(tag)
    if path is None:
        rt.reason = why or f"{tag} not found on PATH"
        return rt
    rt.binary = path
    rt.version = _version(path)
    rt.info.update(_file_facts(path))
    return rt


def _cargo() -> str | None:
    return which("cargo") or (
        os.path.expanduser("~/.cargo/bin/cargo")
        if os.path.exists(os.path.expanduser("~/.cargo/bin/cargo")) else None)


def berth(args, installer, build_log: str) -> Runtime:
    """BERTH_RUNTIME=/path wins; else scripts/build-release.sh (every release
    binary, so berthd's static monitor stays as that script makes it; skipped
    with --quick / --no-build, which use an existing binary only)."""
    rt = Runtime(tag="berth", name="berth-runtime")
    env_bin = os.environ.get("BERTH_RUNTIME")
    if env_bin:
        rt.info["source"] = f"$BERTH_RUNTIME={env_bin}"
        path = env_bin if os.sep in env_bin else (which(env_bin) or env_bin)
        if not os.path.isfile(path):
            rt.reason = f"binary not found: BERTH_RUNTIME={env_bin}"
            return rt
        if not os.access(path, os.X_OK):
            rt.reason = f"binary not executable: BERTH_RUNTIME={env_bin}"
            return rt
        binary = os.path.realpath(path)
    else:
        target_dir = os.path.join(REPO_DIR, os.environ.get("CARGO_TARGET_DIR") or "target")
        binary = os.path.join(target_dir, "release", "berth-runtime")
        if args.quick or args.no_build:
            flag = "--quick" if args.quick else "--no-build"
            rt.info["source"] = f"existing {binary} (not rebuilt: {flag})"
            if not os.path.isfile(binary):
                rt.reason = f"binary not found: {binary} ({flag} does not build; set BERTH_RUNTIME or run without {flag})"
                return rt
        else:
            rt.info["source"] = f"scripts/build-release.sh -> {binary}"
            cargo = _cargo()
            if cargo is None:
                rt.reason = "build failed: cargo not found"
                return rt
            missing = {p: r for p, r in installer.ensure(["pkg-config", "libseccomp-dev"]).items() if r}
            if missing:
                log(f"build prerequisites missing (build may fail): {'; '.join(missing.values())}")
            log("building berth-runtime: scripts/build-release.sh (log: build.log)")
            rc, out, err = sh([os.path.join(REPO_DIR, "scripts", "build-release.sh")],
                              timeout=20 * 60, cwd=REPO_DIR)
            with open(build_log, "w") as f:
                f.write(f"$ scripts/build-release.sh  (rc={rc})\n{out}\n{err}")
            if rc != 0:
                tail = [l for l in (err or out).splitlines() if l.strip()][-6:]
                errs = [l for l in (err or "").splitlines() if l.startswith("error")][:3]
                rt.reason = f"build failed (rc={rc}): {short(' | '.join(errs or tail), 500)}"
                return rt
            if not os.path.isfile(binary):
                rt.reason = f"binary not found after build: {binary}"
                return rt
    rt.binary = binary
    rt.version = _version(binary)
    rt.info.update(_file_facts(binary))
    return rt
