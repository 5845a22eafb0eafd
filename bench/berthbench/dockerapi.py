"""A minimal HTTP/1.1 client for the Docker Engine API on a unix socket
(stdlib only), used to time what `docker run --rm` asks of a daemon without
the docker CLI in the way, and to measure per-request latency.

Only what the engine comparisons need: requests with a JSON body, bodies
framed by Content-Length, chunked encoding or end of stream, HTTP upgrades
(attach), and reading a response's head before its body (wait)."""

from __future__ import annotations

import json
import socket
import time

API = "/v1.41"  # dockerd 20.10's API; berthd serves 1.24-1.45


class ApiError(Exception):
    pass


class Conn:
    def __init__(self, sock_path: str, timeout: float = 30.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(sock_path)
        self.buf = b""

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- writing
    def send(self, method: str, path: str, body=None, upgrade: bool = False) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", "Host: docker", "User-Agent: berth-bench"]
        if body is not None:
            head.append("Content-Type: application/json")
        if body is not None or method in ("POST", "PUT"):
            head.append(f"Content-Length: {len(data)}")
        if upgrade:
            head += ["Connection: Upgrade", "Upgrade: tcp"]
        self.s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)

    # ---- reading
    def _fill(self) -> bool:
        chunk = self.s.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ApiError("connection closed in a response head")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ApiError("connection closed in a response body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self) -> tuple[int, dict]:
        status_line = self._line().decode(errors="replace")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ApiError(f"bad status line {status_line!r}")
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, _, v = line.decode(errors="replace").partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(parts[1]), headers

    def read_body(self, status: int, headers: dict) -> bytes:
        if status in (101, 204, 304) or 100 <= status < 200:
            return b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = b""
            while True:
                size = int(self._line().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    return out
                out += self._exact(size)
                self._exact(2)
        if "content-length" in headers:
            return self._exact(int(headers["content-length"]))
        return self.read_to_eof()

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        self.send(method, path, body)
        status, headers = self.read_head()
        return status, self.read_body(status, headers)


def ping(sock_path: str, timeout: float = 2.0) -> bool:
    try:
        with Conn(sock_path, timeout) as c:
            status, body = c.request("GET", "/_ping")
            return status == 200 and body.strip() == b"OK"
    except (OSError, ApiError, ValueError):
        return False


def request_latency(sock_path: str, method: str, path: str, count: int, timeout: float = 10.0) -> list[float]:
    """Milliseconds per request/response on one keep-alive connection (one warm-up)."""
    out = []
    with Conn(sock_path, timeout) as c:
        c.request(method, path)
        for _ in range(count):
            t0 = time.perf_counter_ns()
            status, _ = c.request(method, path)
            t1 = time.perf_counter_ns()
            if status != 200:
                raise ApiError(f"{method} {path}: HTTP {status}")
            out.append((t1 - t0) / 1e6)
    return out


def run_rm(sock_path: str, image: str, cmd: list, timeout: float = 30.0) -> dict:
    """What `docker run --rm --network none IMAGE CMD` asks of the daemon, in the
    CLI's order: create, attach (upgrade, stdout+stderr), wait?condition=removed
    (head first), start, then the wait result and the end of the attach stream.
    Returns exit status, the raw attach stream and the time of each phase (ms)."""
    t = [time.perf_counter_ns()]
    phases = {}
    main = Conn(sock_path, timeout)
    attach = wait = None
    try:
        status, body = main.request("POST", f"{API}/containers/create", {
            "Image": image, "Cmd": cmd, "AttachStdin": False, "AttachStdout": True,
            "AttachStderr": True, "Tty": False, "OpenStdin": False,
            "HostConfig": {"NetworkMode": "none", "AutoRemove": True},
        })
        if status != 201:
            raise ApiError(f"create: HTTP {status}: {body[:300]!r}")
        cid = json.loads(body)["Id"]
        t.append(time.perf_counter_ns())
        phases["create"] = t[-1] - t[-2]

        attach = Conn(sock_path, timeout)
        attach.send("POST", f"{API}/containers/{cid}/attach?stream=1&stdout=1&stderr=1", upgrade=True)
        status, _ = attach.read_head()
        if status not in (101, 200):
            raise ApiError(f"attach: HTTP {status}")
        wait = Conn(sock_path, timeout)
        wait.send("POST", f"{API}/containers/{cid}/wait?condition=removed")
        wstatus, wheaders = wait.read_head()
        if wstatus != 200:
            raise ApiError(f"wait: HTTP {wstatus}: {wait.read_body(wstatus, wheaders)[:300]!r}")
        t.append(time.perf_counter_ns())
        phases["attach+wait"] = t[-1] - t[-2]

        status, body = main.request("POST", f"{API}/containers/{cid}/start")
        if status not in (204, 304):
            raise ApiError(f"start: HTTP {status}: {body[:300]!r}")
        t.append(time.perf_counter_ns())
        phases["start"] = t[-1] - t[-2]

        result = json.loads(wait.read_body(wstatus, wheaders) or b"{}")
        t.append(time.perf_counter_ns())
        phases["exit+remove"] = t[-1] - t[-2]
        stream = attach.read_to_eof()
        t.append(time.perf_counter_ns())
        phases["attach-eof"] = t[-1] - t[-2]
    finally:
        for c in (main, attach, wait):
            if c is not None:
                c.close()
    if result.get("Error"):
        raise ApiError(f"wait: {result['Error']}")
    return {"id": cid, "exit": result.get("StatusCode"), "stream": stream,
            "total_ms": (t[-1] - t[0]) / 1e6, "phases_ms": {k: v / 1e6 for k, v in phases.items()}}
