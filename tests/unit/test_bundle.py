"""The offline bundle's file (kfab/provision/bundle): the same inputs give the same bytes, a copy with a damaged,
missing or extra member is refused naming the member, the apt index apt reads, the packages the roles install,
and the repository server."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest

from kfab.provision import commands
from kfab.provision.api import Site
from kfab.provision.bundle import offline
from kfab.provision.bundle.archive import BundleError, Member, kfab_release, read, unpacked, write
from kfab.provision.bundle.packages import canonical_name, role_packages, write_index
from kfab.provision.bundle.serve import RepositoryServer

REPO = Path(__file__).resolve().parents[2]


def members(tmp: Path) -> list[Member]:
    files = {"debs/b_1_all.deb": b"b" * 3000, "debs/a_1_all.deb": b"a" * 10, "wheels/x-1-py3-none-any.whl": b"w",
             "images/blobs/sha256/" + "0" * 64: b"layer"}
    out = []
    for name, data in files.items():
        path = tmp / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(Member(name, path))
    return out


@pytest.fixture
def bundle(tmp_path) -> Path:
    write(tmp_path / "b.tar", {"release": "bookworm", "architecture": "amd64", "images": []}, members(tmp_path))
    return tmp_path / "b.tar"


def test_same_inputs_same_bytes_whatever_the_files_times_and_order(tmp_path, bundle):
    again = members(tmp_path)
    for m in again:
        m.source.touch()
    write(tmp_path / "c.tar", {"release": "bookworm", "architecture": "amd64", "images": []}, list(reversed(again)))
    assert bundle.read_bytes() == (tmp_path / "c.tar").read_bytes()
    with tarfile.open(bundle) as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos][:2] == ["manifest.json", "SHA256SUMS"]
    assert [i.name for i in infos][2:] == sorted(i.name for i in infos[2:])
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname, i.mode) for i in infos} == {(0, 0, 0, "", "", 0o644)}


def test_read_checks_every_member_and_names_its_identity(bundle):
    opened = read(bundle)
    assert len(opened.manifest["files"]) == 4
    with tarfile.open(bundle) as tar:
        assert opened.identity == hashlib.sha256(tar.extractfile("manifest.json").read()).hexdigest()
        sums = tar.extractfile("SHA256SUMS").read().decode()
    assert f"{hashlib.sha256(b'a' * 10).hexdigest()}  debs/a_1_all.deb" in sums


def test_a_damaged_member_is_named(bundle):
    data = bytearray(bundle.read_bytes())
    data[data.index(b"b" * 3000) + 1500] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="member 'debs/b_1_all.deb' is damaged"):
        read(bundle)
    proc = subprocess.run([sys.executable, "-m", "kfab", "bundle", "verify", str(bundle)], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 1 and "'debs/b_1_all.deb' is damaged" in proc.stderr


def test_a_cut_short_copy_is_refused(bundle):
    data = bundle.read_bytes()
    bundle.write_bytes(data[:data.index(b"b" * 3000) + 100])
    with pytest.raises(BundleError, match="member .debs/b_1_all.deb. is cut short"):
        read(bundle)


def test_a_member_missing_or_added_is_named(tmp_path, bundle):
    with tarfile.open(bundle) as src, tarfile.open(tmp_path / "less.tar", "w") as less, \
            tarfile.open(tmp_path / "more.tar", "w") as more:
        for info in src.getmembers():
            data = src.extractfile(info).read()
            if info.name != "wheels/x-1-py3-none-any.whl":
                less.addfile(info, io.BytesIO(data))
            more.addfile(info, io.BytesIO(data))
        extra = tarfile.TarInfo("debs/evil_1_all.deb")
        extra.size = 4
        more.addfile(extra, io.BytesIO(b"evil"))
    with pytest.raises(BundleError, match="member 'wheels/x-1-py3-none-any.whl' is missing"):
        read(tmp_path / "less.tar")
    with pytest.raises(BundleError, match="member 'debs/evil_1_all.deb' is not in the manifest"):
        read(tmp_path / "more.tar")


def test_not_a_bundle(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"hello")
    with pytest.raises(BundleError, match="not a kfab bundle"):
        read(tmp_path / "x.tar")
    with pytest.raises(BundleError, match="no such file"):
        read(tmp_path / "nothing.tar")


def test_unpacked_once_per_identity(tmp_path, bundle):
    first, manifest = unpacked(bundle, tmp_path / "cache")
    assert (first / "debs" / "a_1_all.deb").read_bytes() == b"a" * 10
    assert manifest["release"] == "bookworm"
    (first / "marker").write_text("kept")
    again, _ = unpacked(bundle, tmp_path / "cache")
    assert again == first and (again / "marker").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]


def build_deb(tmp: Path, name: str, version: str) -> Path:
    root = tmp / f"{name}-pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                                             f"Maintainer: t <t@example.org>\nDescription: test\n more text\n")
    subprocess.run(["dpkg-deb", "--build", "-Zgzip", str(root), str(tmp / f"{name}.deb")], check=True,
                   capture_output=True)
    return tmp / f"{name}.deb"


def test_flat_repository_index(tmp_path):
    repo = tmp_path / "debs"
    repo.mkdir()
    deb = build_deb(tmp_path, "hello-kfab", "2:1.0-1")
    assert canonical_name(deb) == "hello-kfab_1.0-1_all.deb"
    deb.rename(repo / canonical_name(deb))
    write_index(repo, "bookworm", "amd64")
    packages = (repo / "Packages").read_text()
    data = (repo / "hello-kfab_1.0-1_all.deb").read_bytes()
    assert "Package: hello-kfab\n" in packages and "Version: 2:1.0-1\n" in packages
    assert "Filename: ./hello-kfab_1.0-1_all.deb\n" in packages
    assert f"SHA256: {hashlib.sha256(data).hexdigest()}\n" in packages and f"Size: {len(data)}\n" in packages
    release = (repo / "Release").read_text()
    assert "Suite: bookworm" in release
    assert f" {hashlib.sha256(packages.encode()).hexdigest()} {len(packages.encode())} Packages" in release


def test_packages_of_the_roles_the_inventory_runs():
    names = role_packages(Site(REPO / "inventory" / "lab.yml", REPO / "site.yml"))
    assert {"podman", "runc", "nftables", "etcd-server", "docker-registry", "python3-venv"} <= set(names)
    # no host in groups package_cache, nfs_server or iscsi_target: their roles' packages are not bundled
    assert not {"apt-cacher-ng", "tgt", "nfs-ganesha", "nfs-kernel-server"} & set(names)


def test_repository_server_serves_the_directory_and_names_a_taken_port(tmp_path):
    (tmp_path / "Packages").write_text("Package: x\n")
    server = RepositoryServer(tmp_path, "127.0.0.1", 0)
    port = server.server.server_address[1]
    with server:
        with pytest.raises(OSError, match=f"127.0.0.1:{port}.*--bundle-port"):
            RepositoryServer(tmp_path, "127.0.0.1", port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/Packages", timeout=10) as response:
            assert response.read() == b"Package: x\n"


# `kfab up --bundle` / `kfab plan --bundle` with a bundle that does not fit: stopped before any host is contacted.

def fitting_fields(**changes) -> dict:
    fields = {"release": "bookworm", "architecture": "amd64", "images": [], "kfab_release": kfab_release(),
              "packages": role_packages(Site(REPO / "inventory" / "lab.yml", REPO / "site.yml"))}
    return {**fields, **changes}


@pytest.fixture
def no_host_touched(tmp_path, monkeypatch):
    """up_with_bundle with its cache in tmp_path; any step that would reach a host fails the test."""
    def reached(*args, **kwargs):
        raise AssertionError("a host would have been contacted")
    monkeypatch.setattr(offline, "unpacked", lambda path: unpacked(path, tmp_path / "cache"))
    monkeypatch.setattr(offline, "provision", reached)
    monkeypatch.setattr(offline, "RepositoryServer", reached)
    return lambda path, **options: offline.up_with_bundle(path, str(REPO / "inventory" / "lab.yml"),
                                                          str(REPO / "site.yml"), [], **options)


def test_a_bundle_of_another_kfab_release_stops_naming_bundle_and_both_releases(tmp_path, no_host_touched, capsys):
    path = tmp_path / "old.tar"
    write(path, fitting_fields(kfab_release="0.0.9"), members(tmp_path))
    assert no_host_touched(path) == 1
    err = capsys.readouterr().err
    assert f"kfab up --bundle: {path}: the bundle is for kfab release 0.0.9; this kfab expects release " \
           f"{kfab_release()} (expected {kfab_release()}, found 0.0.9)" in err
    assert "nothing was changed on any host" in err
    write(path, {k: v for k, v in fitting_fields().items() if k != "kfab_release"}, members(tmp_path))
    assert no_host_touched(path, plan=True, check=True) == 1
    err = capsys.readouterr().err
    assert f"kfab plan --bundle: {path}: the bundle records no kfab release" in err and "found none" in err


def test_a_bundle_whose_member_does_not_match_its_manifest_stops(tmp_path, no_host_touched, capsys):
    path = tmp_path / "b.tar"
    write(path, fitting_fields(), members(tmp_path))
    data = bytearray(path.read_bytes())
    data[data.index(b"b" * 3000) + 7] ^= 1
    path.write_bytes(bytes(data))
    assert no_host_touched(path) == 1
    err = capsys.readouterr().err
    assert f"{path}: member 'debs/b_1_all.deb' is damaged" in err and "nothing was changed on any host" in err


def test_a_bundle_made_for_other_plays_or_images_stops(tmp_path, no_host_touched, capsys):
    path = tmp_path / "b.tar"
    fields = fitting_fields()
    write(path, {**fields, "packages": [p for p in fields["packages"] if p != "etcd-server"]}, members(tmp_path))
    assert no_host_touched(path) == 1
    assert "the plays install packages the bundle lacks (etcd-server)" in capsys.readouterr().err


def test_plan_takes_a_bundle_and_runs_up_in_check_mode(tmp_path):
    path = tmp_path / "old.tar"
    write(path, fitting_fields(kfab_release="0.0.9"), members(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "kfab", "plan", "-i", str(REPO / "inventory" / "lab.yml"),
                           "--bundle", str(path)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "kfab plan --bundle:" in proc.stderr and "found 0.0.9" in proc.stderr


def test_plan_with_a_bundle_is_up_with_the_bundle_in_check_mode(monkeypatch):
    seen = {}
    monkeypatch.setattr(commands, "up_with_bundle", lambda bundle, *args, **options: seen.update(options) or 0)
    parser = argparse.ArgumentParser()
    commands.add_commands(parser.add_subparsers())
    args = parser.parse_args(["plan", "-i", "inv.yml", "--bundle", "b.tar", "--bundle-port", "3200"])
    assert args.func(args) == 0
    assert seen["check"] and seen["diff"] and seen["plan"]


def test_the_bundle_lab_installs_what_inventory_lab_installs():
    """tests/lab/test_bundle.py's lab (bundle.yml) has inventory/lab.yml's groups and sizes, so its bundle holds the
    same packages and images as the quick-start lab's and its install runs the same roles."""
    lab = Site(REPO / "inventory" / "lab.yml", REPO / "site.yml")
    bundle = Site(REPO / "tests" / "lab" / "inventory" / "bundle.yml", REPO / "site.yml")
    assert role_packages(bundle) == role_packages(lab)
    for group in ("control_plane", "etcd", "registry", "workers", "package_cache", "nfs_server", "iscsi_target"):
        assert len(bundle.group(group)) == len(lab.group(group)), group
    assert bundle.var("bn1", "kfab_bundle_images") == lab.var("labh1", "kfab_bundle_images") == \
        ["localhost/kfab-demo:1"]
    assert bool(bundle.var("bn2", "loadbalancer_pool")) and bool(lab.var("labh2", "loadbalancer_pool"))


def test_plan_with_a_fitting_bundle_runs_the_plays_in_check_mode_offline(tmp_path, monkeypatch, capsys):
    """The run gets the bundle's repository, release and wheelhouse as extra vars; nothing is pushed in check
    mode; with --json stdout holds the plan alone."""
    path = tmp_path / "b.tar"
    write(path, fitting_fields(images=["localhost/kfab-demo:1"]), members(tmp_path))
    runs = []

    class Server:
        def __init__(self, directory, address, port):
            self.url = f"http://{address}:{port}/"

        def __enter__(self):
            return self.url

        def __exit__(self, *exc):
            pass

    def pushed(*args):
        raise AssertionError("check mode pushed images")

    monkeypatch.setattr(offline, "unpacked", lambda p: unpacked(p, tmp_path / "cache"))
    monkeypatch.setattr(offline, "RepositoryServer", Server)
    monkeypatch.setattr(offline, "address_towards", lambda host: "10.78.0.1")
    monkeypatch.setattr(offline, "seed", pushed)
    monkeypatch.setattr(offline, "provision", lambda inv, play, extra, **options: runs.append((extra, options)) or 0)
    code = offline.up_with_bundle(path, str(REPO / "inventory" / "lab.yml"), str(REPO / "site.yml"), [],
                                  3143, check=True, plan=True, as_json=True)
    assert code == 0 and len(runs) == 1
    extra, options = runs[0]
    assert options["check"] and options["plan"]
    offline_vars = json.loads(extra[-1])
    assert offline_vars["package_repository"] == "http://10.78.0.1:3143/" and offline_vars["package_proxy"] == ""
    assert offline_vars["package_repository_release"] == "bookworm"
    assert offline_vars["kfab_wheelhouse"].endswith("/wheels")
    out = capsys.readouterr()
    assert out.out == "" and "served at http://10.78.0.1:3143/" in out.err
    assert "would push the bundle's images into the cluster registry: localhost/kfab-demo:1" in out.err
