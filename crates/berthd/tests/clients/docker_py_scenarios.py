"""The docker SDK for Python (docker-py) against berthd: the everyday scenarios through
its own API calls. argv: SOCKET API_VERSION ("auto" or e.g. "1.41"). Exits non-zero
(with a traceback) on the first failed check."""
import io
import sys
import tarfile
import time

import docker

sock, version = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=f"unix://{sock}", version=version, timeout=60)

# The daemon answering must be berthd.
v = client.version()
assert any(c.get("Name") == "Berth" for c in v.get("Components", [])), v
assert client.ping()

img = client.images.get("busybox:latest")
assert img.id.startswith("sha256:"), img.id
assert "busybox:latest" in img.tags, img.tags

# Foreground run: output, and its exit code as an error.
out = client.containers.run("busybox", ["sh", "-c", "echo from-py"], remove=True)
assert out == b"from-py\n", out
try:
    client.containers.run("busybox", ["sh", "-c", "exit 3"], remove=True)
    raise AssertionError("non-zero exit must raise")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e.exit_status

# Detached, labelled, logs, exec, filters.
c = client.containers.run(
    "busybox", ["sh", "-c", "echo ready; exec sleep 300"], detach=True, name="py-web", labels={"app": "py"}
)
for _ in range(100):
    if b"ready" in c.logs():
        break
    time.sleep(0.05)
assert c.logs() == b"ready\n", c.logs()
c.reload()
assert c.status == "running", c.status
assert c.attrs["State"]["Pid"] > 0
assert [x.id for x in client.containers.list(filters={"label": "app=py"})] == [c.id]
assert client.containers.list(filters={"label": "app=other"}) == []
code, output = c.exec_run(["sh", "-c", "echo in-exec; exit 5"])
assert code == 5 and output == b"in-exec\n", (code, output)
code, output = c.exec_run("cat /etc/hostname")
assert code == 0 and output.strip().decode() == c.id[:12], output
# Demuxed streams.
code, (so, se) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
assert (so, se) == (b"o\n", b"e\n"), (so, se)

# Conflicts and not-found map to the SDK's exceptions.
try:
    client.containers.run("busybox", "true", name="py-web", detach=True)
    raise AssertionError("name conflict must fail")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
try:
    client.containers.get("no-such-container")
    raise AssertionError("must be 404")
except docker.errors.NotFound:
    pass
try:
    c.remove()
    raise AssertionError("removing a running container must fail")
except docker.errors.APIError as e:
    assert e.status_code == 409, e

# Events since the start of this script include what we did.
since = int(time.time()) - 60
c.stop(timeout=1)
r = c.wait()
assert r["StatusCode"] == 137, r
evs = list(client.events(since=since, until=int(time.time()) + 1, decode=True, filters={"container": "py-web"}))
actions = [e["Action"] for e in evs]
assert "start" in actions and "die" in actions and "stop" in actions, actions
c.remove()

# Images: tag, save, remove, load.
img.tag("py/copy", "2")
assert "py/copy:2" in client.images.get("py/copy:2").tags
data = b"".join(client.api.get_image("py/copy:2"))
client.images.remove("py/copy:2")
loaded = client.images.load(data)
assert any("py/copy:2" in i.tags for i in loaded), loaded

# Low-level API: create with HostConfig, start, wait, logs with timestamps.
api = client.api
hc = api.create_host_config(mem_limit="64m", cap_drop=["ALL"])
cid = api.create_container("busybox", ["sh", "-c", "grep CapEff /proc/self/status"], host_config=hc)["Id"]
api.start(cid)
assert api.wait(cid)["StatusCode"] == 0
logs = api.logs(cid, timestamps=True).decode()
assert "CapEff:\t0000000000000000" in logs, logs
assert logs[:4].isdigit(), logs
info = api.inspect_container(cid)
assert info["HostConfig"]["Memory"] == 64 << 20, info["HostConfig"]["Memory"]
api.remove_container(cid)
assert client.containers.list(all=True) == []
# Volumes.
vol = client.volumes.create("py-vol", labels={"k": "v"})
assert vol.attrs["Driver"] == "local" and vol.attrs["Labels"] == {"k": "v"}, vol.attrs
client.containers.run("busybox", ["sh", "-c", "echo persisted > /d/f"], volumes={"py-vol": {"bind": "/d", "mode": "rw"}}, remove=True)
out = client.containers.run("busybox", ["cat", "/d/f"], volumes=["py-vol:/d:ro"], remove=True)
assert out == b"persisted\n", out
assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["py-vol"]
vol.remove()
assert client.volumes.list() == []

# Networks: a user network, a container on it by name, a published port, connect and
# disconnect, removal.
import urllib.request

net = client.networks.create("py-net", driver="bridge", labels={"k": "n"})
assert net.attrs["Driver"] == "bridge" and net.attrs["Labels"] == {"k": "n"}, net.attrs
srv = client.containers.run(
    "busybox", ["httpd", "-f", "-p", "80", "-h", "/etc"], detach=True, name="py-srv",
    network="py-net", ports={"80/tcp": None},
)
srv.reload()
ip = srv.attrs["NetworkSettings"]["Networks"]["py-net"]["IPAddress"]
assert ip, srv.attrs["NetworkSettings"]
host_port = srv.ports["80/tcp"][0]["HostPort"]
body = b""
for _ in range(50):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{host_port}/hostname", timeout=2).read()
        break
    except OSError:
        time.sleep(0.1)
assert body.strip() == srv.id[:12].encode(), body
out = client.containers.run("busybox", ["nslookup", "py-srv"], network="py-net", remove=True)
assert ip.encode() in out, out
net.reload()
assert srv.id in net.attrs["Containers"], net.attrs
other = client.containers.run("busybox", ["sleep", "300"], detach=True, name="py-other")
net.connect(other, aliases=["oth"])
other.reload()
assert "py-net" in other.attrs["NetworkSettings"]["Networks"], other.attrs["NetworkSettings"]
code, output = other.exec_run(["nslookup", "py-srv"])
assert code == 0 and ip.encode() in output, output
net.disconnect(other)
other.reload()
assert "py-net" not in other.attrs["NetworkSettings"]["Networks"], other.attrs["NetworkSettings"]
try:
    net.remove()
    raise AssertionError("removing a network in use must fail")
except docker.errors.APIError as e:
    assert e.status_code == 403, e
srv.remove(force=True)
other.remove(force=True)
net.remove()
assert client.networks.list(names=["py-net"]) == []
try:
    client.networks.get("py-net")
    raise AssertionError("must be 404")
except docker.errors.NotFound:
    pass
print("docker-py scenarios ok", version)
