"""The node agent removes a Podman pod only once its containers' own cleanup (conmon, then the
`podman container cleanup` conmon starts) has finished: Podman 4.3 racing the two can wreck the host's store.
And when Podman wrecked it anyway (a layer half deleted with its rootfs mounted), the agent unmounts that rootfs."""

import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from podman.errors import APIError

from kfab.node.runtime import PodmanRuntime, RuntimeError_, cleanups_running, unmount_stuck_layer

CID = "f511e8315d0074e9e80c5166d56a2165cb735235d0915e4670667423a416982f"


def fake_proc(tmp_path: Path, *cmdlines: list[str]) -> Path:
    tmp_path.mkdir()
    for pid, argv in enumerate(cmdlines, start=100):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (tmp_path / "self").mkdir()   # not a PID: never read
    return tmp_path


def test_a_running_conmon_or_cleanup_of_the_pods_container_is_waited_for(tmp_path):
    conmon = ["/usr/bin/conmon", "--api-version", "1", "-c", CID, "-u", CID, "-r", "/usr/bin/runc"]
    assert cleanups_running({CID}, fake_proc(tmp_path / "a", conmon))
    cleanup = ["/usr/bin/podman", "--root", "/var/lib/containers/storage", "container", "cleanup", CID]
    assert cleanups_running({CID}, fake_proc(tmp_path / "b", cleanup))


def test_other_containers_and_other_processes_do_not_count(tmp_path):
    proc = fake_proc(tmp_path / "p", ["/usr/bin/conmon", "-c", "0" * 64],       # another container's conmon
                     ["/bin/sh", "-c", f"echo {CID}"],                           # names the id, is no cleanup
                     ["/usr/bin/podman", "system", "service"])
    assert not cleanups_running({CID}, proc)
    assert not cleanups_running(set(), proc)


# --- a layer Podman left half deleted with its rootfs mounted (podman#16882) ------------------------------------

def busy(merged: Path) -> str:
    return f"getting store info: unlinkat {merged}: device or resource busy"


@pytest.fixture
def mounted_layer(tmp_path):
    """A real mount where Podman's overlay driver keeps a layer's rootfs (this machine's tests run as root)."""
    merged = tmp_path / "storage" / "overlay" / LAYER / "merged"
    merged.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "stuck", str(merged)], check=True)
    yield merged
    subprocess.run(["umount", str(merged)], capture_output=True)


LAYER = "1ff0e1133b74258ceadfe1182da07ff1466fb87d120986bbd633dfd0103b84e5"


def test_the_stuck_layers_rootfs_is_unmounted_and_the_call_made_again(mounted_layer):
    calls = []

    def info():
        calls.append(os.path.ismount(mounted_layer))
        if calls[-1]:
            raise APIError("500 Server Error", explanation=busy(mounted_layer))
        return {"version": {"Version": "4.3.1"}}

    runtime = PodmanRuntime("unix:///nonexistent.sock", concurrency=1)
    assert asyncio.run(runtime._call(info)) == {"version": {"Version": "4.3.1"}}
    assert calls == [True, False]


def test_other_errors_and_a_rootfs_that_will_not_unmount_are_raised_as_podman_said(tmp_path):
    runtime = PodmanRuntime("unix:///nonexistent.sock", concurrency=1)
    not_mounted = tmp_path / "overlay" / LAYER / "merged"

    def fails(message):
        raise APIError("500 Server Error", explanation=message)

    for message in ("no such container", busy(not_mounted), busy(tmp_path / "elsewhere" / "merged")):
        with pytest.raises(APIError) as raised:
            asyncio.run(runtime._call(fails, message))
        assert raised.value.explanation == message
    assert not asyncio.run(unmount_stuck_layer("image not known"))


def test_a_call_that_put_podmans_words_in_its_own_error_is_repaired_too(mounted_layer):
    attempts = []

    def remove():
        attempts.append(1)
        if os.path.ismount(mounted_layer):
            raise RuntimeError_(f"podman pod rm p: {busy(mounted_layer)}")

    asyncio.run(PodmanRuntime("unix:///nonexistent.sock", concurrency=1)._call(remove))
    assert len(attempts) == 2
