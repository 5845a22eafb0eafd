"""Container engines for the engine comparisons, each in private directories
below the bench's work dir, driven through its own CLI:

- berthd (this repo) with the docker CLI,
- dockerd (Debian's docker.io, 20.10) with its own managed containerd and the
  same docker CLI,
- podman (its own --root/--runroot/--tmpdir, cgroupfs, no events), with crun
  or runc per run.

All get the same busybox image: a docker-archive made here from the busybox
bundle's rootfs (Debian's static busybox + applet symlinks), loaded with
`docker load` / `podman load`, so the image id (sha256 of its config) is the
same everywhere and is checked.

Every engine uses a cgroup parent named `berth-bench-<bench pid>-...`, so the
bench's cgroup sweep finds whatever is left. stop() removes the containers
through the engine, stops the daemon (SIGTERM, then SIGKILL), SIGKILLs any of
its helper processes still alive (found by pid: processes whose command line
names the engine's private directory), removes its cgroups, unmounts
everything below its directories and deletes them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

from . import dockerapi
from .cleanup import unmount_under
from .util import ID_PREFIX, REPO_DIR, log, sh, short, which

IMAGE = "busybox:latest"
IMAGE_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class EngineError(Exception):
    pass


# ------------------------------------------------------------------ the image

def busybox_archive(workdir: str, rootfs: str, image: str = IMAGE, file_name: str = "busybox-image.tar",
                    created_by: str = "berth-bench: Debian busybox-static + applet symlinks") -> tuple[str, str]:
    """docker-archive tar of `rootfs` as `image` (default busybox:latest; one
    layer, Env PATH, Cmd sh). Deterministic (fixed mtimes/owners). Returns
    (path, image id)."""
    out = os.path.join(workdir, file_name)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                ti = t.gettarinfo(full, arcname=os.path.relpath(full, rootfs))
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = ""
                ti.mtime = 1700000000
                if ti.isfile():
                    with open(full, "rb") as f:
                        t.addfile(ti, f)
                else:
                    t.addfile(ti)
    layer_bytes = layer.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(platform.machine(), platform.machine())
    created = "2023-11-14T22:13:20Z"
    config = {
        "architecture": arch, "os": "linux", "created": created,
        "config": {"Env": [IMAGE_PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": created, "created_by": created_by}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    image_id = hashlib.sha256(config_bytes).hexdigest()
    repo, _, tag = image.rpartition(":")
    manifest = [{"Config": f"{image_id}.json", "RepoTags": [image],
                 "Layers": [f"{diff_id}/layer.tar"]}]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), mode, 1700000000
            t.addfile(ti, io.BytesIO(data))
        d = tarfile.TarInfo(diff_id)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1700000000
        t.addfile(d)
        add(f"{diff_id}/layer.tar", layer_bytes)
        add(f"{image_id}.json", config_bytes)
        add("manifest.json", json.dumps(manifest).encode())
        add("repositories", json.dumps({repo: {tag: diff_id}}).encode())
    return out, f"sha256:{image_id}"


# ------------------------------------------------------------------ /proc, cgroups

def proc_table() -> dict[int, tuple[int, str, str]]:
    """{pid: (ppid, comm, cmdline)} of every process visible now."""
    out = {}
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                stat = f.read()
            with open(f"/proc/{e}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        rest = stat[stat.rfind(")") + 2:].split()
        if rest and rest[0] == "Z":
            continue  # zombies hold no memory
        out[int(e)] = (int(rest[1]) if len(rest) > 1 else 0, comm, cmd)
    return out


def mem_kib(pid: int) -> dict | None:
    """{'rss': KiB, 'pss': KiB} from /proc/PID/smaps_rollup, or None if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    got = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in ("Rss", "Pss"):
            got[k.lower()] = int(v.split()[0])
    return got if len(got) == 2 else None


def memory_controller() -> tuple[str, str] | None:
    """(mountpoint of the memory controller, usage file name): cgroup v1
    memory.usage_in_bytes, else cgroup2 memory.current."""
    v2 = None
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3:
            continue
        mp = lf[4]
        if rf[0] == "cgroup" and "memory" in rf[2].split(","):
            return mp, "memory.usage_in_bytes"
        if rf[0] == "cgroup2" and v2 is None:
            v2 = (mp, "memory.current")
    return v2


def memcg_bytes(path: str, usage_file: str) -> int | None:
    """Memory charged to one cgroup, from its exact counters: cgroup v1
    memory.stat total_rss + total_cache + total_swap + memory.kmem.usage_in_bytes;
    v2 memory.stat anon + file + kernel (or its parts) + sock. usage_in_bytes /
    memory.current are charged in per-CPU batches of up to 64 pages, too coarse
    for a few hundred KiB per container; they are the fallback only."""
    try:
        with open(os.path.join(path, "memory.stat")) as f:
            st = {k: int(v) for k, v in (l.split() for l in f if len(l.split()) == 2)}
    except (OSError, ValueError):
        return read_int(os.path.join(path, usage_file))
    if usage_file == "memory.usage_in_bytes":
        if "total_rss" not in st:
            return read_int(os.path.join(path, usage_file))
        kmem = read_int(os.path.join(path, "memory.kmem.usage_in_bytes")) or 0
        return st["total_rss"] + st.get("total_cache", 0) + st.get("total_swap", 0) + kmem
    if "anon" not in st:
        return read_int(os.path.join(path, usage_file))
    kernel = st.get("kernel")
    if kernel is None:
        kernel = sum(st.get(k, 0) for k in ("kernel_stack", "pagetables", "percpu", "slab", "sec_pagetables"))
    return st["anon"] + st.get("file", 0) + kernel + st.get("sock", 0)


def read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# ------------------------------------------------------------------ engines

class Engine:
    """Common part: private dir, CLI argv, processes, cgroups, stop."""
    name = "engine"
    cli_name = "docker"

    def __init__(self, workdir: str, purpose: str, bench_pid: int):
        self.purpose = purpose
        self.bench_pid = bench_pid
        self.dir = os.path.join(workdir, "engines", f"{self.tag}-{purpose}")
        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        self.cgroup_parent = f"/{ID_PREFIX}{bench_pid}-{self.tag}-{purpose}"
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ)
        self.version = None
        self.started = False
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.markers = [self.dir]  # command-line substrings that mark our helper processes
        self.run_dir_note = None
        self.tmpfs_mounts: list[str] = []

    # ---- to override
    tag = "engine"

    def cli(self, *args) -> list:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def container_cgroup_names(self, cid: str) -> tuple[str, ...]:
        return (cid,)

    # ---- common
    def sh(self, *args, timeout=120, input=None):
        return sh(self.cli(*args), timeout=timeout, input=input, env=self.env)

    def daemon_pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def processes(self) -> dict[int, str]:
        """{pid: comm} of the daemon and every helper process of this engine."""
        table = proc_table()
        out = {}
        for pid in self.daemon_pids():
            if pid in table:
                out[pid] = table[pid][1]
        for pid, (_ppid, comm, cmd) in table.items():
            if pid != os.getpid() and any(m in cmd for m in self.markers) and comm not in ("docker", "podman"):
                out[pid] = comm
        return out

    def memory(self, pids=None) -> dict:
        """Sum of RSS and PSS (KiB) over the engine's processes, and per comm."""
        procs = self.processes() if pids is None else pids
        total = {"rss": 0, "pss": 0, "n": 0, "by_comm": {}}
        for pid, comm in procs.items():
            m = mem_kib(pid)
            if m is None:
                continue
            total["rss"] += m["rss"]
            total["pss"] += m["pss"]
            total["n"] += 1
            c = total["by_comm"].setdefault(comm, {"n": 0, "rss": 0, "pss": 0})
            c["n"] += 1
            c["rss"] += m["rss"]
            c["pss"] += m["pss"]
        return total

    def cgroup_dir(self) -> str | None:
        mc = memory_controller()
        return os.path.join(mc[0], self.cgroup_parent.lstrip("/")) if mc else None

    def container_cgroups_bytes(self, ids) -> tuple[int, int, int]:
        """(Σ exact memory of the containers' cgroups (memcg_bytes), Σ of their
        usage_in_bytes / memory.current, how many cgroups were found)."""
        mc = memory_controller()
        if mc is None:
            return 0, 0, 0
        top = os.path.join(mc[0], self.cgroup_parent.lstrip("/"))
        wanted = {n: cid for cid in ids for n in self.container_cgroup_names(cid)}
        total = usage = found = 0
        stack = [(top, 0)]
        while stack:
            d, depth = stack.pop()
            try:
                entries = [e for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            for e in entries:
                if e.name in wanted:
                    v = memcg_bytes(e.path, mc[1])
                    if v is not None:
                        total += v
                        usage += read_int(os.path.join(e.path, mc[1])) or 0
                        found += 1
                elif depth < 3:
                    stack.append((e.path, depth + 1))
        return total, usage, found

    def rm_force(self, ids) -> list:
        """argv removing running containers at once (SIGKILL, like `docker rm -f`)."""
        return self.cli("rm", "-f", *ids)

    def container_ids(self) -> list[str]:
        rc, out, _ = self.sh("ps", "-aq", "--no-trunc", timeout=60)
        return [l.strip() for l in out.splitlines() if l.strip()] if rc == 0 else []

    def remove_all(self, timeout=180) -> tuple[bool, str]:
        ids = self.container_ids()
        if not ids:
            return True, ""
        rc, _, err = sh(self.rm_force(ids), timeout=timeout, env=self.env)
        return rc == 0, short(err, 300)

    def _kill_helpers(self) -> int:
        n = 0
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
                n += 1
            except OSError:
                pass
        return n

    def _remove_cgroups(self) -> None:
        from .util import cgroup_hierarchy_roots
        for root in cgroup_hierarchy_roots():
            top = os.path.join(root, self.cgroup_parent.lstrip("/"))
            if not os.path.isdir(top):
                continue
            dirs = []
            for dp, dn, _ in os.walk(top):
                dirs += [os.path.join(dp, d) for d in dn]
            for d in sorted(dirs, key=lambda p: p.count("/"), reverse=True) + [top]:
                for _ in range(20):
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.05)

    def stop(self) -> list[str]:
        """Remove containers, stop the daemon, kill leftovers, unmount, delete.
        Returns notes about anything that needed force."""
        notes = []
        if self.started:
            ok, err = self.remove_all()
            if not ok:
                notes.append(f"{self.name}: removing containers failed: {err}")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                notes.append(f"{self.name}: daemon did not exit {STOP_TIMEOUT:.0f}s after SIGTERM; killed")
                self.proc.kill()
                self.proc.wait(10)
        t0 = time.monotonic()  # helpers (monitors, shims, conmon) exit on their own shortly
        while self.processes() and time.monotonic() - t0 < 5:
            time.sleep(0.1)
        for _ in range(3):
            if not self.processes():
                break
            n = self._kill_helpers()
            if n:
                notes.append(f"{self.name}: killed {n} leftover helper process(es) after stopping")
            time.sleep(0.2)
        self._remove_cgroups()
        self._extra_cleanup()
        for d in [self.dir] + self._more_dirs():
            if unmount_under(d):
                shutil.rmtree(d, ignore_errors=True)
            else:
                notes.append(f"{self.name}: mounts remain under {d}; not deleted")
        self.started = False
        return notes

    def _extra_cleanup(self) -> None:
        pass

    def _more_dirs(self) -> list[str]:
        return []

    def _tmpfs(self, path: str) -> None:
        """Mount a private tmpfs at `path`: exec roots / run roots live on tmpfs
        (/run) in a real installation, so their writes and fsyncs cost what they
        would there. Falls back to a plain directory (noted in run_dir_note)."""
        os.makedirs(path, mode=0o711, exist_ok=True)
        rc, _, err = sh(["mount", "-t", "tmpfs", "-o", "mode=0711,size=512m", "tmpfs", path], timeout=20)
        if rc != 0:
            self.run_dir_note = f"{self.name}: could not mount a tmpfs at {path} ({short(err, 120)}); it is on disk"
        else:
            self.tmpfs_mounts.append(path)

    def tmpfs_bytes(self) -> int:
        """Bytes used in the engine's tmpfs run dirs (memory, though no process's PSS)."""
        total = 0
        for p in self.tmpfs_mounts:
            try:
                st = os.statvfs(p)
                total += (st.f_blocks - st.f_bfree) * st.f_frsize
            except OSError:
                pass
        return total

    def _spawn_daemon(self, argv) -> None:
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         close_fds=True, start_new_session=True, env=self.env)
        finally:
            logf.close()

    def _wait_ready(self, sock: str) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < READY_TIMEOUT:
            if self.proc.poll() is not None:
                raise EngineError(f"daemon exited with {self.proc.returncode}: {self.log_tail()}")
            if os.path.exists(sock) and dockerapi.ping(sock):
                return time.monotonic() - t0
            time.sleep(0.05)
        raise EngineError(f"not ready after {READY_TIMEOUT:.0f}s: {self.log_tail()}")

    def log_tail(self, n=600) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - n))
                return short(f.read().decode(errors="replace"), n)
        except OSError:
            return "(no log)"

    def load_image(self, archive: str, want_id: str, image: str = IMAGE) -> str | None:
        """Load the archive; returns a note if the image id differs, raises on failure."""
        rc, out, err = self.sh("load", "-i", archive, timeout=120)
        if rc != 0:
            raise EngineError(f"`{self.cli_name} load` failed (exit {rc}): {short(err or out, 300)}")
        rc, out, err = self.sh("image", "inspect", "--format", "{{.Id}}", image, timeout=60)
        if rc != 0:
            raise EngineError(f"image {image} not there after load: {short(err, 300)}")
        got = out.strip()
        if got and not got.startswith("sha256:"):
            got = "sha256:" + got
        if got != want_id:
            return f"{self.name}: image id after load is {got}, expected {want_id} (same archive)"
        return None


_NET_FLAGS: dict[str, bool] = {}
_ALLOCATOR: list = []


def berthd_has_networking(berthd: str) -> bool:
    """True if this berthd takes --bridge/--bip/--firewall-table (commit 0e221b4
    on): it then makes its default bridge and nftables table at start."""
    if berthd not in _NET_FLAGS:
        rc, out, err = sh([berthd, "--help"], timeout=20)
        _NET_FLAGS[berthd] = rc == 0 and "--firewall-table" in out + err
    return _NET_FLAGS[berthd]


def subnet_allocator(pid: int):
    from .netenv import SubnetAllocator
    if not _ALLOCATOR:
        _ALLOCATOR.append(SubnetAllocator(pid))
    return _ALLOCATOR[0]


class BerthNet:
    """berthd's default bridge, address, nftables table and address pool: the
    bench's own, so it never touches a real installation's berth0 / `inet berth`."""

    def __init__(self, pid: int, purpose_letter: str):
        from .netenv import bridge_name, table_name
        alloc = subnet_allocator(pid)
        self.subnet = alloc.next()
        self.pool_net = alloc.next()
        self.gateway = str(self.subnet.network_address + 1)
        self.bip = f"{self.gateway}/{self.subnet.prefixlen}"
        self.pool = f"base={self.pool_net},size=26"
        self.bridge = bridge_name(pid, "b", purpose_letter)
        self.table = table_name(pid, purpose_letter)

    def argv(self) -> list:
        return ["--bridge", self.bridge, "--bip", self.bip, "--firewall-table", self.table,
                "--default-address-pool", self.pool]


class Berthd(Engine):
    name = "berth"
    tag = "berthd"

    def __init__(self, workdir, purpose, bench_pid, berthd: str, monitor: str | None, docker: str,
                 net: BerthNet | None = None, berth_cli: str | None = None):
        """net: the bridge/table/subnets to give berthd. None: made here (purpose's
        first letter) if this berthd has networking, and removed again by stop()
        together with what berthd changed (ip_forward); a caller that passes
        `net` cleans up the host itself (netenv.restore)."""
        super().__init__(workdir, purpose, bench_pid)
        self.berthd, self.monitor, self.docker = berthd, monitor, docker
        # Berth's own CLI when given (the product's path); the docker CLI otherwise.
        self.berth_cli = berth_cli
        self.net = net
        self._own_net = False
        self._sysctl_before: dict = {}
        self.net_removed: list[str] = []
        self.sock = os.path.join(self.dir, "berthd.sock")
        os.makedirs(os.path.join(self.dir, "docker-config"), exist_ok=True)
        self.env.update(DOCKER_CONFIG=os.path.join(self.dir, "docker-config"), DOCKER_CLI_HINTS="false")
        self.env.pop("DOCKER_HOST", None)
        self.env.pop("DOCKER_CONTEXT", None)
        self.exec_root = os.path.join(self.dir, "exec")
        # berth-monitor's command line names <exec-root>/c/<id>
        self.markers = [self.exec_root]

    def cli(self, *args):
        return [self.berth_cli or self.docker, "-H", f"unix://{self.sock}", *args]

    def docker_cli(self, *args):
        return [self.docker, "-H", f"unix://{self.sock}", *args]

    def start(self) -> float:
        with open(os.path.join(self.dir, "daemon.json"), "w") as f:
            f.write("{}\n")
        self._tmpfs(self.exec_root)
        argv = [self.berthd, "--config-file", os.path.join(self.dir, "daemon.json"),
                "-H", f"unix://{self.sock}", "--data-root", os.path.join(self.dir, "data"),
                "--exec-root", self.exec_root, "--cgroup-parent", self.cgroup_parent]
        if self.monitor:
            argv += ["--monitor-path", self.monitor]
        if self.net is None and berthd_has_networking(self.berthd):
            self.net = BerthNet(self.bench_pid, self.purpose[0])
            self._own_net = True
            from .netenv import read_sysctl
            self._sysctl_before = {k: read_sysctl(k) for k in ("net/ipv4/ip_forward",)}
        if self.net is not None:
            argv += self.net.argv()
        self._spawn_daemon(argv)
        self.started = True
        return self._wait_ready(self.sock)

    def _extra_cleanup(self) -> None:
        if self.net is None:
            return
        from . import netenv
        self.net_removed = netenv.remove_berth_net(self.net.table, self.net.bridge)
        if self._own_net:
            for k, v in self._sysctl_before.items():
                if v is not None and netenv.read_sysctl(k) != v:
                    netenv.write_sysctl(k, v)
                    self.net_removed.append(f"{k} back to {v}")


class Dockerd(Engine):
    name = "docker"
    tag = "dockerd"

    def __init__(self, workdir, purpose, bench_pid, dockerd: str, docker: str, bridge: str | None = None):
        """bridge: None = no networking (`--bridge=none --iptables=false ...`);
        else the name of an existing bridge (with its address) for `--bridge`, and
        dockerd runs with its defaults: iptables, ip masquerade, userland proxy.
        The caller makes the bridge and restores the host (netenv)."""
        super().__init__(workdir, purpose, bench_pid)
        self.dockerd, self.docker = dockerd, docker
        self.bridge = bridge
        self.sock = os.path.join(self.dir, "docker.sock")
        self.exec_root = os.path.join(self.dir, "x")  # short: containerd's sockets live below it
        os.makedirs(os.path.join(self.dir, "docker-config"), exist_ok=True)
        self.env.update(DOCKER_CONFIG=os.path.join(self.dir, "docker-config"), DOCKER_CLI_HINTS="false")
        self.env.pop("DOCKER_HOST", None)
        self.env.pop("DOCKER_CONTEXT", None)
        # containerd: --config <exec-root>/containerd/...; shims: -address <exec-root>/containerd/...
        self.markers = [self.exec_root + "/"]

    def cli(self, *args):
        return [self.docker, "-H", f"unix://{self.sock}", *args]

    def start(self) -> float:
        with open(os.path.join(self.dir, "daemon.json"), "w") as f:
            f.write("{}\n")
        self._tmpfs(self.exec_root)
        argv = [self.dockerd, "--config-file", os.path.join(self.dir, "daemon.json"),
                "-H", f"unix://{self.sock}", "--data-root", os.path.join(self.dir, "data"),
                "--exec-root", self.exec_root, "--pidfile", os.path.join(self.dir, "docker.pid")]
        if self.bridge is None:
            argv += ["--bridge=none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false"]
        else:
            argv += [f"--bridge={self.bridge}", "--iptables=true", "--ip-masq=true", "--userland-proxy=true"]
            proxy = which("docker-proxy")
            if proxy:
                argv += ["--userland-proxy-path", proxy]
        argv += ["--cgroup-parent", self.cgroup_parent, "--exec-opt", "native.cgroupdriver=cgroupfs",
                 "--storage-driver", "overlay2", "--log-level", "warn"]
        self._spawn_daemon(argv)
        self.started = True
        return self._wait_ready(self.sock)


class Podman(Engine):
    name = "podman"
    tag = "podman"
    cli_name = "podman"

    def __init__(self, workdir, purpose, bench_pid, podman: str, net: dict | None = None):
        """net: None (containers use --network none where the comparison says so),
        or {'name', 'bridge', 'subnet', 'gateway'}: start() creates that bridge
        network (netavark, no DNS) in the private network config dir and
        containers.conf makes it the default network."""
        super().__init__(workdir, purpose, bench_pid)
        self.podman = podman
        self.net = net
        self.root = os.path.join(self.dir, "root")
        # podman refuses a --runroot longer than 50 characters: a short one in
        # /tmp, named so that the bench's sweep of dead runs finds it too.
        self.runroot = tempfile.mkdtemp(prefix=f"{ID_PREFIX}{bench_pid}-pm-")
        self.runtime = "crun"
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        psoft, phard = resource.getrlimit(resource.RLIMIT_NPROC)
        # conmon (hence the runtime) runs with nproc <= kernel.pid_max here
        pid_max = read_int("/proc/sys/kernel/pid_max") or phard
        if phard == resource.RLIM_INFINITY or phard > pid_max:
            phard = pid_max
        psoft = min(psoft if psoft != resource.RLIM_INFINITY else phard, phard)

        def lim(v):
            return -1 if v == resource.RLIM_INFINITY else v
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            # podman raises nofile/nproc to 1048576 by default, which needs
            # CAP_SYS_RESOURCE above the caller's hard limit: give containers the
            # bench's own limits (what berthd/dockerd containers inherit).
            f.write("[containers]\n"
                    f"default_ulimits = [\"nofile={lim(soft)}:{lim(hard)}\", \"nproc={lim(psoft)}:{lim(phard)}\"]\n"
                    "[engine]\n"
                    "cgroup_manager = \"cgroupfs\"\n"
                    "events_logger = \"none\"\n"
                    f"tmp_dir = \"{self.runroot}/tmp\"\n")
            if net:
                f.write("[network]\n"
                        f"default_network = \"{net['name']}\"\n")
        reg = os.path.join(self.dir, "registries.conf")
        with open(reg, "w") as f:
            f.write("unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n")
        self.env.update(CONTAINERS_CONF=conf, CONTAINERS_REGISTRIES_CONF=reg)
        self.markers = [self.root + "/", self.runroot + "/"]

    def cli(self, *args):
        return [self.podman, "--root", self.root, "--runroot", self.runroot,
                "--tmpdir", os.path.join(self.runroot, "tmp"), "--storage-driver", "overlay",
                "--cgroup-manager", "cgroupfs", "--events-backend", "none",
                "--network-config-dir", os.path.join(self.dir, "net"),
                "--runtime", self.runtime, *args]

    def start(self) -> float:
        self._tmpfs(self.runroot)
        self.started = True
        if self.net:
            # The default network named in containers.conf is made up in memory by
            # podman unless a file for it exists in the network config dir (and
            # podman 4.3's `network create` has no --interface-name): write
            # netavark's file for it, with the bench's bridge name.
            n = self.net
            os.makedirs(os.path.join(self.dir, "net"), exist_ok=True)
            conf = os.path.join(self.dir, "net", f"{n['name']}.json")
            spec = {"name": n["name"], "id": hashlib.sha256(n["name"].encode()).hexdigest(), "driver": "bridge",
                    "network_interface": n["bridge"], "created": "2023-11-14T22:13:20.000000000Z",
                    "subnets": [{"subnet": n["subnet"], "gateway": n["gateway"]}], "ipv6_enabled": False,
                    "internal": False, "dns_enabled": False, "ipam_options": {"driver": "host-local"}}
            with open(conf, "w") as f:
                json.dump(spec, f, indent=5)
            rc, out, err = self.sh("network", "inspect", "--format",
                                   "{{.NetworkInterface}} {{range .Subnets}}{{.Subnet}}{{end}}", n["name"], timeout=60)
            if rc != 0 or out.split() != [n["bridge"], n["subnet"]]:
                raise EngineError(f"podman network {n['name']} from {conf}: got {short(out, 80)!r}, want "
                                  f"{n['bridge']} {n['subnet']} ({short(err, 200)})")
        return 0.0

    def container_cgroup_names(self, cid):
        return (f"libpod-{cid}", cid)

    def rm_force(self, ids):
        # podman's `rm -f` first waits up to 10 s for SIGTERM; -t 0 kills at once as docker does
        return self.cli("rm", "-f", "-t", "0", *ids)

    def _more_dirs(self):
        return [self.runroot]


# ------------------------------------------------------------------ finding binaries

def find_berthd(args, build_log: str) -> tuple[str | None, str | None, str]:
    """(berthd, berth-monitor or None, how / why not). $BERTHD wins; else
    target/release/berthd, built with scripts/build-release.sh (berthd, the
    static berth-monitor, berth-runtime, the berth CLI) when missing (not with
    --quick / --no-build)."""
    env_bin = os.environ.get("BERTHD")
    if env_bin:
        path = env_bin if os.sep in env_bin else (which(env_bin) or env_bin)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return None, None, f"BERTHD={env_bin} is not an executable file"
        how = f"$BERTHD={env_bin}"
    else:
        target = os.path.join(REPO_DIR, os.environ.get("CARGO_TARGET_DIR") or "target")
        path = os.path.join(target, "release", "berthd")
        how = f"existing {path}"
        if not os.path.isfile(path) or not os.path.isfile(os.path.join(target, "release", "berth")):
            if args.quick or args.no_build:
                flag = "--quick" if args.quick else "--no-build"
                return None, None, f"{path} not found ({flag} does not build; set BERTHD or run without {flag})"
            cargo = which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
            if not os.path.exists(cargo):
                return None, None, "berthd missing and cargo not found"
            log("building berthd: scripts/build-release.sh (log: build.log)")
            rc, out, err = sh([os.path.join(REPO_DIR, "scripts", "build-release.sh")],
                              timeout=20 * 60, cwd=REPO_DIR)
            with open(build_log, "a") as f:
                f.write(f"$ scripts/build-release.sh  (rc={rc})\n{out}\n{err}\n")
            if rc != 0 or not os.path.isfile(path):
                return None, None, f"build of berthd failed (rc={rc}): {short(err, 300)}"
            how = f"scripts/build-release.sh -> {path}"
    mon = os.environ.get("BERTH_MONITOR") or os.path.join(os.path.dirname(os.path.realpath(path)), "berth-monitor")
    if not os.path.isfile(mon):
        return None, None, f"berth-monitor not found next to {path} (set BERTH_MONITOR)"
    return os.path.realpath(path), mon, how


def tool_version(argv) -> str | None:
    rc, out, err = sh(argv, timeout=20)
    text = (out or err).strip()
    return text.splitlines()[0] if rc == 0 and text else None


def prerequisites(ctx, want: list[str]) -> dict:
    """Binaries for the engines in `want` (berth, docker, podman): returns
    {'docker': path|None, 'berthd': ..., 'monitor': ..., 'dockerd': ..., 'podman': ...,
     'why': {engine: reason}, 'how': {...}, 'versions': {...}}."""
    out = {"why": {}, "how": {}, "versions": {}}
    docker = which("docker")
    out["docker"] = docker
    if docker:
        out["versions"]["docker CLI"] = tool_version([docker, "--version"])
    if "berth" in want:
        b, m, how = find_berthd(ctx.args, os.path.join(ctx.results_dir, "build.log"))
        out["berthd"], out["monitor"] = b, m
        # Berth's CLI: $BERTH_CLI, else `berth` next to berthd; None: the docker CLI is used.
        cli = os.environ.get("BERTH_CLI") or (os.path.join(os.path.dirname(b), "berth") if b else None)
        out["berth_cli"] = cli if cli and os.path.isfile(cli) and os.access(cli, os.X_OK) else None
        if out["berth_cli"]:
            out["versions"]["berth CLI"] = tool_version([out["berth_cli"], "--version"])
        if b is None:
            out["why"]["berth"] = how
        elif docker is None:
            out["why"]["berth"] = "docker CLI not found on PATH"
        else:
            from .runtimes import _file_facts
            f = _file_facts(b)
            out["how"]["berth"] = f"{how} (sha256 {f['binary_sha256']}…, {f['binary_mtime']})"
            out["versions"]["berthd"] = tool_version([b, "--version"])
    if "docker" in want:
        d = which("dockerd")
        out["dockerd"] = d
        if d is None:
            out["why"]["docker"] = "dockerd not installed (Debian package docker.io; the bench does not install it)"
        elif docker is None:
            out["why"]["docker"] = "docker CLI not found on PATH"
        elif which("containerd") is None:
            out["why"]["docker"] = "containerd not installed"
        else:
            out["versions"]["dockerd"] = tool_version([d, "--version"])
            out["versions"]["containerd"] = tool_version(["containerd", "--version"])
    if "podman" in want:
        p = which("podman")
        out["podman"] = p
        if p is None:
            out["why"]["podman"] = "podman not installed" + (" (--quick installs nothing)" if ctx.quick else "")
        else:
            out["versions"]["podman"] = tool_version([p, "--version"])
            out["versions"]["conmon"] = tool_version(["conmon", "--version"])
            for rt in ("crun", "runc"):
                if which(rt):
                    out["versions"][rt] = tool_version([rt, "--version"])
    return out
