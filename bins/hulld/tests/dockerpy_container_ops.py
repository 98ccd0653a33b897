"""docker-py (Debian's python3-docker) against hulld: the SDK's calls on existing
containers (pause, top, stats, rename, diff, export, commit, prune, df) read hull's shapes.

Usage: DOCKER_HOST=unix://... dockerpy_container_ops.py BUSYBOX_TAR
"""
import io
import os
import sys
import tarfile

import docker

c = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto")
with open(sys.argv[1], "rb") as f:
    c.images.load(f.read())

ct = c.containers.run(
    "busybox",
    ["sh", "-c", "echo made > /made; sleep 1000"],
    detach=True,
    name="py",
    network_mode="none",
    mem_limit="32m",
)
try:
    ct.pause()
    ct.reload()
    assert ct.status == "paused", ct.status
    assert ct.attrs["State"]["Paused"] is True
    ct.unpause()
    ct.reload()
    assert ct.status == "running", ct.status

    top = ct.top()
    assert "PID" in top["Titles"], top
    assert any("sleep 1000" in p[-1] for p in top["Processes"]), top

    s = ct.stats(stream=False)
    assert s["memory_stats"]["limit"] == 32 << 20, s["memory_stats"]
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0, s["cpu_stats"]
    assert s["name"] == "/py", s["name"]
    stream = ct.stats(decode=True)
    first, second = next(stream), next(stream)
    assert second["preread"] == first["read"], (first["read"], second["preread"])
    stream.close()

    ct.rename("py2")
    ct.reload()
    assert ct.name == "py2", ct.name
    try:
        c.containers.get("py")
        raise AssertionError("the old name still resolves")
    except docker.errors.NotFound:
        pass

    diff = ct.diff()
    assert {"Path": "/made", "Kind": 1} in diff, diff

    data = b"".join(ct.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.extractfile("made").read() == b"made\n"

    img = ct.commit(repository="pycommit", tag="1", changes=["ENV FROM_PY=1"])
    assert "pycommit:1" in img.tags, img.tags
    assert "FROM_PY=1" in img.attrs["Config"]["Env"], img.attrs["Config"]
    out = c.containers.run("pycommit:1", ["cat", "/made"], remove=True, network_mode="none")
    assert out == b"made\n", out

    df = c.df()
    assert any(x["Names"] == ["/py2"] for x in df["Containers"]), df["Containers"]
    assert len(df["Images"]) == 2, df["Images"]
finally:
    ct.remove(force=True)

c.containers.create("busybox", name="stopped", network_mode="none")
pruned = c.containers.prune()
assert len(pruned["ContainersDeleted"]) == 1, pruned
assert c.containers.list(all=True) == []
print("ok")
