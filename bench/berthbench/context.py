"""What a comparison gets to work with: options, a private work dir, the
installer, runtimes (resolved once, shared), the busybox bundle, and state
roots that are registered for cleanup."""

from __future__ import annotations

import os

from . import cleanup, packages, runtimes
from .bundle import Bundle, make_busybox_bundle
from .util import ID_PREFIX, log


class NotAvailable(Exception):
    """A prerequisite shared by all subjects of a comparison is missing."""


class Context:
    def __init__(self, args, results_dir: str, workdir: str, installer: packages.Installer):
        self.args = args
        self.quick = args.quick
        self.results_dir = results_dir
        self.workdir = workdir
        self.installer = installer
        self._runtimes: dict[str, runtimes.Runtime] = {}
        self._bundle: Bundle | None = None
        self._bundle_error: str | None = None
        self._roots: dict[str, str] = {}  # state root -> runtime binary
        self.pid = os.getpid()

    # ---- runtimes
    def runtime(self, tag: str) -> runtimes.Runtime:
        if tag not in self._runtimes:
            if tag == "berth":
                rt = runtimes.berth(self.args, self.installer,
                                    os.path.join(self.results_dir, "build.log"))
            else:
                rt = runtimes.peer(tag, self.installer)
            log(f"{rt.name}: " + (f"{rt.binary}" if rt.usable else f"not measured: {rt.reason}"))
            self._runtimes[tag] = rt
        return self._runtimes[tag]

    def all_runtimes(self) -> list[runtimes.Runtime]:
        return list(self._runtimes.values())

    # ---- ids and state roots
    def container_id(self, tag: str, n) -> str:
        """Unique per bench process; cleanup relies on this exact shape."""
        return f"{ID_PREFIX}{self.pid}-{tag}-{n}"

    def state_root(self, rt: runtimes.Runtime, purpose: str) -> str:
        root = os.path.join(self.workdir, "roots", f"{purpose}-{rt.tag}")
        os.makedirs(root, mode=0o700, exist_ok=True)
        self._roots[root] = rt.binary
        cleanup.write_owner(self.workdir, self._roots)
        return root

    def sweep_root(self, root: str) -> list[str]:
        return cleanup.sweep_state_root(self._roots.get(root), root, self.pid)

    # ---- bundle
    def busybox_bundle(self) -> Bundle:
        if self._bundle is None and self._bundle_error is None:
            why = self.installer.ensure(["busybox-static"])["busybox-static"]
            bb = packages.static_busybox()
            if bb is None:
                self._bundle_error = f"no static busybox: {why or 'busybox-static not installed'}"
            else:
                try:
                    self._bundle = make_busybox_bundle(self.workdir, bb)
                    log(f"bundle: {self._bundle.path} ({self._bundle.applets} applet links, "
                        f"config from {self._bundle.spec_source})")
                except Exception as e:  # noqa: BLE001 - reported, not fatal
                    self._bundle_error = f"cannot build bundle: {e}"
        if self._bundle is None:
            raise NotAvailable(self._bundle_error)
        return self._bundle
