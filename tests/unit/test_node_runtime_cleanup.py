"""The node agent removes a Podman pod only once its containers' own cleanup (conmon, then the
`podman container cleanup` conmon starts) has finished: Podman 4.3 racing the two can wreck the host's store."""

from pathlib import Path

from kfab.node.runtime import cleanups_running

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
