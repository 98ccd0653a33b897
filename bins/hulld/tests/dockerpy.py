"""docker-py (Debian's python3-docker) against hulld: the SDK's image calls and errors.

Usage: DOCKER_HOST=unix://... dockerpy.py BUSYBOX_TAR REGISTRY_HOST
"""
import os
import sys

import docker

tar, registry = sys.argv[1], sys.argv[2]
c = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto")
assert c.ping()
assert c.version()["ApiVersion"] == "1.43", c.version()
info = c.info()
assert info["Driver"] == "hull-overlay", info
assert "name=no-new-privileges" in info["SecurityOptions"], info

with open(tar, "rb") as f:
    loaded = c.images.load(f.read())
assert any("busybox:latest" in i.tags for i in loaded), loaded
img = c.images.get("busybox")
assert img.tags == ["busybox:latest"], img.tags
assert img.attrs["Config"]["Cmd"] == ["sh"], img.attrs
assert img.history()[0]["Id"] == img.id
assert img.tag("pyrepo/bb", "2")
assert "pyrepo/bb:2" in [t for i in c.images.list() for t in i.tags]
assert [i.id for i in c.images.list(name="pyrepo/bb")] == [img.id]
archive = b"".join(img.save(named=True))
assert len(archive) > 1 << 20, len(archive)
c.images.remove("pyrepo/bb:2")
c.images.remove("busybox")
assert c.images.list() == []
assert c.images.load(archive)[0].id == img.id

name = f"{registry}/py/bb"
img.tag(name, "3")
out = c.images.push(name, tag="3")
assert "3: digest: sha256:" in out, out
c.images.remove(f"{name}:3")
pulled = c.images.pull(name, tag="3")
assert pulled.id == img.id, pulled

try:
    c.images.get("nosuch")
    raise AssertionError("nosuch found")
except docker.errors.ImageNotFound:
    pass
# network none: this hulld runs in the host network namespace (no bridge from tests).
out = c.containers.run("busybox", "echo hi", remove=True, network_mode="none")
assert out == b"hi\n", out
try:
    c.containers.run("busybox", "sh -c 'exit 5'", remove=True, network_mode="none")
    raise AssertionError("exit 5 passed")
except docker.errors.ContainerError as e:
    assert e.exit_status == 5, e
ct = c.containers.run("busybox", "sleep 100", detach=True, name="py", network_mode="none")
assert c.containers.get("py").status == "running"
ct.kill()
ct.remove()
assert c.containers.list(all=True) == []

# Volumes: create with labels, a container writes, a second reads, in-use removal is a
# conflict, prune keeps what is used.
v = c.volumes.create("pyvol", labels={"owner": "py"})
assert v.name == "pyvol" and v.attrs["Driver"] == "local", v.attrs
assert [x.name for x in c.volumes.list(filters={"label": "owner=py"})] == ["pyvol"]
c.containers.run("busybox", "sh -c 'echo stored > /v/f'", remove=True, network_mode="none",
                 volumes={"pyvol": {"bind": "/v", "mode": "rw"}})
out = c.containers.run("busybox", "cat /v/f", remove=True, network_mode="none",
                       volumes=["pyvol:/v:ro"])
assert out == b"stored\n", out
holder = c.containers.create("busybox", "true", network_mode="none",
                             mounts=[docker.types.Mount("/m", "pyvol", type="volume")])
mounts = c.api.inspect_container(holder.id)["Mounts"]
assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", "pyvol", "/m")], mounts
try:
    c.volumes.get("pyvol").remove()
    raise AssertionError("removed a volume in use")
except docker.errors.APIError as e:
    assert e.status_code == 409, e
try:
    c.volumes.get("nosuch")
    raise AssertionError("nosuch volume found")
except docker.errors.NotFound:
    pass
c.volumes.create("pyunused")
pruned = c.volumes.prune(filters={"all": "true"})
assert pruned["VolumesDeleted"] == ["pyunused"], pruned
holder.remove()
c.volumes.get("pyvol").remove()
assert c.volumes.list() == []

c.images.prune(filters={"dangling": False})
assert c.images.list() == []
print("docker-py: ok")
