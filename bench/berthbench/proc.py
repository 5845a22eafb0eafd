"""Spawn one command, time it and reap it (wait4), with a timeout.

Note on ru_maxrss: exec() keeps the pre-exec peak RSS of the process, and a
child forked (or vforked) from this Python process starts with Python's ~20 MiB
image, so the rusage of such a child is NOT a usable memory figure for the command.
Peak RSS of a command is measured through GNU time instead (with_gnu_time, read_gnu_time_kib):
its child is forked from the small `time` process.

The timeout uses a pidfd (poll until the child exits), so the child is reaped
with wait4() exactly once, by us."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass


@dataclass
class Outcome:
    rc: int | None           # exit code; negative = killed by that signal
    wall_ns: int
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


class Spawner:
    """Reuses two scratch files for the child's stdout/stderr (no pipes to
    drain, nothing allocated per run)."""

    def __init__(self, scratch_dir: str, tag: str):
        self.out = open(os.path.join(scratch_dir, f"{tag}.stdout"), "w+b")
        self.err = open(os.path.join(scratch_dir, f"{tag}.stderr"), "w+b")

    def close(self):
        self.out.close()
        self.err.close()

    @staticmethod
    def _reset(f):
        f.seek(0)
        f.truncate()

    @staticmethod
    def _read(f) -> str:
        f.seek(0)
        return f.read(64 * 1024).decode(errors="replace")

    def run(self, argv, timeout: float, capture_stdout: bool = False, env=None) -> Outcome:
        self._reset(self.err)
        if capture_stdout:
            self._reset(self.out)
        stdout = self.out if capture_stdout else subprocess.DEVNULL
        timed_out = False
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=self.err,
                             close_fds=True, env=env)
        try:
            pidfd = os.pidfd_open(p.pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            if pidfd is not None:
                ready, _, _ = select.select([pidfd], [], [], timeout)
                if not ready:
                    timed_out = True
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            _, status, _ru = os.wait4(p.pid, 0)
        except BaseException:  # interrupted (SIGTERM/^C): don't leave the child behind
            try:
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                else:
                    p.kill()
                os.wait4(p.pid, 0)
            except OSError:
                pass
            p.returncode = -9
            raise
        finally:
            if pidfd is not None:
                os.close(pidfd)
        t1 = time.perf_counter_ns()
        p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it's reaped
        return Outcome(
            rc=p.returncode,
            wall_ns=t1 - t0,
            timed_out=timed_out,
            stdout=self._read(self.out) if capture_stdout else "",
            stderr=self._read(self.err),
        )


def gnu_time() -> str | None:
    """/usr/bin/time if it is GNU time (supports -f %M and -o)."""
    for p in ("/usr/bin/time", "/bin/time"):
        if os.path.isfile(p) and os.access(p, os.X_OK):
            try:
                out = subprocess.run([p, "--version"], capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if "GNU" in out.stdout + out.stderr:
                return p
    return None


def with_gnu_time(time_bin: str, out_file: str, argv) -> list:
    return [time_bin, "-o", out_file, "-f", "%M", *argv]


def read_gnu_time_kib(out_file: str) -> int | None:
    """Last line of GNU time's -o file is %M (KiB); earlier lines may say
    'Command exited with non-zero status N'."""
    try:
        with open(out_file) as f:
            lines = [l.strip() for l in f if l.strip()]
        return int(lines[-1])
    except (OSError, ValueError, IndexError):
        return None
