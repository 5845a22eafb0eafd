"""What the image comparisons (image-pull, image-save-load) share: the test image,
a registry serving it, Berth's `imagetool` example binary, and fresh file systems.

make_image(): one gzip layer of about 300 MB uncompressed, deterministic (seeded
PRNG, fixed tar headers), generated once and cached under /var/tmp. It mixes what
real layers hold: many small text-like files (config, scripts, sources), larger
text files, and blocks of random bytes (binaries, already-compressed data), so it
compresses to roughly half, like a typical distribution layer.

Registry: Debian's docker-registry on a free 127.0.0.1 port with storage in the
bench work dir; push() uploads the image with plain distribution-spec requests
(http.client, no other tool), so every peer pulls the same bytes.

FreshFs: every timed run writes into a file system made for it (ext4 on a sparse
file in the work dir, on a direct-I/O loop device), so no run inherits another's dirty pages or
freed inodes (ext4 without a journal, like this host's root, skips inodes freed in
the last 5 minutes when allocating, at a cost per file that grows with each run).

imagetool(): $BERTH_IMAGETOOL, else `cargo build --release -p berth-image
--example imagetool` (an existing binary with --quick / --no-build)."""

from __future__ import annotations

import glob
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import shutil
import socket
import subprocess
import tarfile
import time

from .cleanup import unmount_under
from .util import REPO_DIR, log, sh, short, which

CACHE_DIR = "/var/tmp/berth-bench"
IMAGE_VERSION = "image-pull-v3"  # bump when the generator changes
TARGET_BYTES = 300 * 1000 * 1000
REGISTRY_BIN = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

WORDS = ("the of and to in is that for it as with was on be by this are or from at which "
         "not an have has but were they their one all can more been there if would will when "
         "container image layer runtime kernel namespace cgroup mount overlay registry digest "
         "manifest config process signal socket thread buffer memory device network bridge "
         "return static struct const void int char unsigned long size_t error errno NULL "
         "include define ifdef endif printf malloc free open close read write").split()


class _Hashing(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `inner`."""

    def __init__(self, inner):
        self.inner, self.h, self.n = inner, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.inner.write(b)


def _text_pool(rng: random.Random, size: int) -> bytes:
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
        if rng.random() < 0.3:
            line = "    " + line + f" = {rng.randint(0, 1 << 20)};"
        out.append(line)
        n += len(line) + 1
    return ("\n".join(out) + "\n").encode()[:size]


def _files(rng: random.Random):
    """(path, bytes) until TARGET_BYTES: thousands of small text files (a quarter of
    the bytes), large text files and random-byte files (about 40% of the bytes each)."""
    pool = _text_pool(rng, 4 << 20)
    total, i = 0, 0
    while total < TARGET_BYTES:
        r = rng.random()
        d = f"usr/share/bench/d{i // 200:03d}"
        if r < 0.965:
            size = int(rng.lognormvariate(8.5, 1.2)) % (256 << 10) + 1   # ~5 KiB median
            kind = "small"
        elif r < 0.984:
            size = rng.randint(256 << 10, 4 << 20)
            kind = "text"
        else:
            size = rng.randint(64 << 10, 4 << 20)
            kind = "bin"
        if kind == "bin":
            data = rng.randbytes(size)
        else:
            off = rng.randrange(0, len(pool))
            data = pool[off:off + size]
            if len(data) < size:  # wrap around (size never exceeds the pool)
                data += pool[:size - len(data)]
        yield f"{d}/f{i:06d}.{kind}", data
        total += size
        i += 1


def make_image() -> dict:
    """Build (or reuse) the cached image. Returns its description (paths, digests)."""
    d = os.path.join(CACHE_DIR, IMAGE_VERSION)
    meta_path = os.path.join(d, "meta.json")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if os.path.getsize(meta["layer_path"]) == meta["layer_size"]:
            return meta
    except (OSError, ValueError, KeyError):
        pass
    for old in glob.glob(os.path.join(CACHE_DIR, "image-pull-v*")):
        if old != d:
            shutil.rmtree(old, ignore_errors=True)
    os.makedirs(d, exist_ok=True)
    t0 = time.monotonic()
    log(f"image: generating the ~{TARGET_BYTES // 10**6} MB test layer in {d} (once; cached)")
    layer_path = os.path.join(d, "layer.tar.gz")
    tmp = layer_path + ".tmp"
    rng = random.Random(20260101)
    files = 0
    probe = None
    with open(tmp, "wb") as raw:
        gz_hash = _Hashing(raw)
        with gzip.GzipFile(fileobj=gz_hash, mode="wb", compresslevel=6, mtime=0) as gz:
            tar_hash = _Hashing(gz)
            with tarfile.open(fileobj=tar_hash, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                dirs = set()
                for path, data in _files(rng):
                    parent = os.path.dirname(path)
                    parts = parent.split("/")
                    for k in range(1, len(parts) + 1):
                        p = "/".join(parts[:k])
                        if p not in dirs:
                            dirs.add(p)
                            ti = tarfile.TarInfo(p)
                            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                            tar.addfile(ti)
                    ti = tarfile.TarInfo(path)
                    ti.size, ti.mode, ti.mtime = len(data), 0o644, 1700000000
                    tar.addfile(ti, io.BytesIO(data))
                    files += 1
                    probe = probe or {"path": path, "size": len(data),
                                      "sha256": hashlib.sha256(data).hexdigest()}
    os.replace(tmp, layer_path)
    diff_id = "sha256:" + tar_hash.h.hexdigest()
    config = json.dumps({
        "architecture": _go_arch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }, sort_keys=True).encode()
    meta = {
        "layer_path": layer_path, "layer_size": gz_hash.n,
        "layer_digest": "sha256:" + gz_hash.h.hexdigest(),
        "uncompressed_size": tar_hash.n, "diff_id": diff_id, "files": files, "probe": probe,
        "config": config.decode(), "config_digest": "sha256:" + hashlib.sha256(config).hexdigest(),
    }
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": meta["config_digest"], "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": meta["layer_digest"], "size": gz_hash.n}],
    }, sort_keys=True)
    meta["manifest"] = manifest
    with open(meta_path + ".tmp", "w") as f:
        json.dump(meta, f)
    os.replace(meta_path + ".tmp", meta_path)
    log(f"image: {files} files, {tar_hash.n / 1e6:.0f} MB tar, {gz_hash.n / 1e6:.0f} MB gzip "
        f"in {time.monotonic() - t0:.0f} s")
    return meta


def _go_arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


class Registry:
    """docker-registry on 127.0.0.1:<free port>; stop() kills it."""

    def __init__(self, workdir: str):
        self.dir = os.path.join(workdir, "registry")
        os.makedirs(self.dir, exist_ok=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/storage\n"
                    f"http:\n  addr: {self.addr}\n  secret: berth-bench\n")
        self.log_path = os.path.join(self.dir, "registry.log")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", cfg], stdin=subprocess.DEVNULL,
                                     stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self._request("GET", "/v2/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        with open(self.log_path, errors="replace") as f:
            raise RuntimeError(f"docker-registry did not start: {f.read()[-500:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def _request(self, method, path, body=None, headers=None, length=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            h = dict(headers or {})
            if length is not None:
                h["Content-Length"] = str(length)
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, r.getheader("Location"), data
        finally:
            c.close()

    def _upload(self, repo, digest, body, length):
        status, loc, data = self._request("POST", f"/v2/{repo}/blobs/uploads/", length=0)
        if status != 202 or not loc:
            raise RuntimeError(f"POST upload for {repo}: HTTP {status} {data[:200]!r}")
        if loc.startswith("http"):
            loc = "/" + loc.split("/", 3)[3]
        loc += ("&" if "?" in loc else "?") + f"digest={digest}"
        status, _, data = self._request("PUT", loc, body=body, length=length,
                                        headers={"Content-Type": "application/octet-stream"})
        if status != 201:
            raise RuntimeError(f"PUT blob {digest}: HTTP {status} {data[:200]!r}")

    def push(self, meta: dict, repo: str, tag: str) -> str:
        """Upload the image; returns the reference `127.0.0.1:PORT/repo:tag`."""
        with open(meta["layer_path"], "rb") as f:
            self._upload(repo, meta["layer_digest"], f, meta["layer_size"])
        config = meta["config"].encode()
        self._upload(repo, meta["config_digest"], config, len(config))
        manifest = meta["manifest"].encode()
        status, _, data = self._request("PUT", f"/v2/{repo}/manifests/{tag}", body=manifest,
                                        length=len(manifest), headers={"Content-Type": OCI_MANIFEST})
        if status != 201:
            raise RuntimeError(f"PUT manifest: HTTP {status} {data[:200]!r}")
        return f"{self.addr}/{repo}:{tag}"


def probe_ok(root: str, meta: dict) -> bool:
    """Whether the image's first file is unpacked under `root`, whole."""
    p = os.path.join(root, meta["probe"]["path"])
    try:
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == meta["probe"]["sha256"]
    except OSError:
        return False


class FreshFs:
    """A new ext4 file system mounted at <workdir>/<name> for one run (a plain
    directory when mkfs.ext4 or loop mounts are unavailable: `fresh` says which)."""

    SIZE = "4G"

    def __init__(self, workdir: str, name: str):
        self.path = os.path.join(workdir, name)
        self.image = self.path + ".img"
        self.fresh = False
        os.makedirs(self.path, exist_ok=True)
        mkfs = which("mkfs.ext4")
        if mkfs is None:
            self.why = "mkfs.ext4 not found"
            return
        rc, _, err = sh(["truncate", "-s", self.SIZE, self.image])
        if rc == 0:
            rc, _, err = sh([mkfs, "-q", "-F", self.image], timeout=120)
        if rc == 0:
            # Direct I/O: the loop device writes straight to the disk, as a real block
            # device would, not into a second page cache (whose copying would burn the
            # CPU of whoever syncs, during its timed run).
            rc, dev, err = sh(["losetup", "-f", "--show", "--direct-io=on", self.image], timeout=60)
            if rc == 0:
                rc, _, err = sh(["mount", dev.strip(), self.path], timeout=60)
                # Detached now, freed automatically once unmounted (autoclear).
                sh(["losetup", "-d", dev.strip()], timeout=60)
            else:
                rc, _, err = sh(["mount", "-o", "loop", self.image, self.path], timeout=60)
        if rc != 0:
            self.why = f"cannot make a loop-mounted ext4: {short(err, 200)}"
            self._remove_image()
            return
        self.fresh = True
        self.why = ""

    def _remove_image(self):
        try:
            os.unlink(self.image)
        except OSError:
            pass

    def close(self):
        """Unmount (anything below too, e.g. podman's mounts) and delete everything."""
        unmount_under(self.path)
        shutil.rmtree(self.path, ignore_errors=True)
        self._remove_image()


_IMAGETOOL: dict = {}


def imagetool(args, build_log: str) -> tuple[str | None, str]:
    """(path, how) or (None, why not). Built once per bench run."""
    if "result" in _IMAGETOOL:
        return _IMAGETOOL["result"]
    env_bin = os.environ.get("BERTH_IMAGETOOL")
    target = os.path.join(REPO_DIR, os.environ.get("CARGO_TARGET_DIR") or "target")
    binary = os.path.join(target, "release", "examples", "imagetool")
    if env_bin:
        res = (env_bin, f"$BERTH_IMAGETOOL={env_bin}") if os.access(env_bin, os.X_OK) \
            else (None, f"BERTH_IMAGETOOL={env_bin} is not an executable")
    elif args.quick or args.no_build:
        flag = "--quick" if args.quick else "--no-build"
        res = (binary, f"existing {binary} ({flag})") if os.access(binary, os.X_OK) \
            else (None, f"{binary} not found ({flag} builds nothing; set BERTH_IMAGETOOL)")
    else:
        cargo = which("cargo") or os.path.expanduser("~/.cargo/bin/cargo")
        argv = [cargo, "build", "--release", "-p", "berth-image", "--example", "imagetool"]
        log("building imagetool: " + " ".join(argv[1:]) + " (log: build.log)")
        rc, out, err = sh(argv, timeout=20 * 60, cwd=REPO_DIR)
        with open(build_log, "a") as f:
            f.write(f"$ {' '.join(argv)}  (rc={rc})\n{out}\n{err}\n")
        if rc != 0 or not os.access(binary, os.X_OK):
            errs = [l for l in (err or "").splitlines() if l.startswith("error")][:3]
            res = (None, f"build failed (rc={rc}): {short(' | '.join(errs) or err, 400)}")
        else:
            res = (binary, f"cargo build --release -p berth-image --example imagetool -> {binary}")
    _IMAGETOOL["result"] = res
    return res


def tool_version(argv) -> str:
    rc, out, err = sh(argv, timeout=30)
    return short((out or err).strip(), 200) if rc == 0 else "unknown"
