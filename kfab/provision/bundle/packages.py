"""The Debian packages of a bundle: which ones the roles install on an inventory's hosts, their closure as apt
resolves it on a host of the hosts' release, and the flat apt repository (Packages, Release) hosts install from.

The closure is resolved against an empty package status (`Dir::State::status=/dev/null`): every dependency,
down to libc, whatever the resolving host happens to have installed — so it fits any fresh host of that release
and architecture, and apt on the host takes only what it lacks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from debian.debfile import DebFile

from kfab.provision.modules.base import as_list, q
from kfab.provision.modules.package import APT
from kfab.provision.remote import RemoteHost
from kfab.provision.roles import walk_tasks
from kfab.provision.templating import render_value

PACKAGE_MODULES = ("package", "apt")
REMOTE_DIR = "/var/tmp/kfab-bundle-debs"


class PackageError(Exception):
    pass


def role_packages(site) -> list[str]:
    """Every package a `package`/`apt` task of the plays installs on some host of the inventory (their `when`
    is not evaluated: a package a condition may skip is still bundled)."""
    names: set[str] = set()
    for play in site.plays:
        hosts = site.select(play.hosts)
        for role in play.all_roles() if hosts else []:
            for task in walk_tasks(role.tasks):
                if task.module.name not in PACKAGE_MODULES or task.args.get("state", "present") != "present":
                    continue
                for host in hosts:
                    value = render_value(task.args.get("name"), site.host_vars(host))
                    names.update(str(n) for n in as_list(value) if n)
    return sorted(names)


def release_of(remote: RemoteHost) -> tuple[str, str]:
    """(Debian codename, dpkg architecture) of the host."""
    out = remote.run(". /etc/os-release && echo \"$VERSION_CODENAME\" && dpkg --print-architecture")
    words = out.stdout.split()
    if out.rc != 0 or len(words) != 2:
        raise PackageError(f"{remote.name}: cannot read its Debian release and architecture: "
                           f"{(out.stderr or out.stdout).strip()}")
    return words[0], words[1]


def download_closure(remote: RemoteHost, names: list[str], into: Path, count=lambda done, total: None
                     ) -> list[Path]:
    """apt on `remote` downloads `names` with every dependency (and recommends, as role tasks install them);
    the .debs are copied into `into` under their canonical names (name_version-without-epoch_arch.deb)."""
    d = q(REMOTE_DIR)
    # The host's own sources, even where an earlier `kfab up --bundle` pointed apt at a bundle (role common).
    apt = f"{APT} -o Dir::Etc::SourceList=/etc/apt/sources.list -o Dir::Etc::SourceParts=/etc/apt/sources.list.d"
    cmd = (f"rm -rf {d} && mkdir -p {d}/partial && {apt} update >/dev/null && "
           f"{apt} -o Dir::State::status=/dev/null -o Dir::Cache::archives={d} -o APT::Sandbox::User=root "
           f"--download-only install {' '.join(q(n) for n in names)} >/dev/null && cd {d} && ls -1 -- *.deb")
    out = remote.run(cmd)
    if out.rc != 0:
        raise PackageError(f"{remote.name}: apt could not download the packages "
                           f"({' '.join(names)}): {(out.stderr or out.stdout).strip()[-2000:]}")
    into.mkdir(parents=True, exist_ok=True)
    debs = []
    try:
        files = sorted(out.stdout.split())
        for name in files:
            local = into / name
            remote.conn.get(f"{REMOTE_DIR}/{name}", str(local))
            debs.append(local.rename(into / canonical_name(local)))
            count(len(debs), len(files))
    finally:
        remote.run(f"rm -rf {d}")
    return debs


def canonical_name(deb: Path) -> str:
    control = DebFile(str(deb)).debcontrol()
    version = control["Version"].split(":", 1)[-1]
    return f"{control['Package']}_{version}_{control['Architecture']}.deb"


def _hashes(data: bytes) -> dict[str, str]:
    return {"MD5sum": hashlib.md5(data).hexdigest(), "SHA1": hashlib.sha1(data).hexdigest(),
            "SHA256": hashlib.sha256(data).hexdigest()}


def write_index(repo: Path, release: str, arch: str) -> list[Path]:
    """Packages and Release of the flat repository in `repo` (hosts: `deb [trusted=yes] URL ./`); their paths."""
    stanzas = []
    for deb in sorted(repo.glob("*.deb")):
        control = DebFile(str(deb)).debcontrol()
        data = deb.read_bytes()
        control["Filename"] = f"./{deb.name}"
        control["Size"] = str(len(data))
        for key, value in _hashes(data).items():
            control[key] = value
        stanzas.append(control.dump())
    packages = "\n".join(stanzas).encode()
    (repo / "Packages").write_bytes(packages)
    sums = _hashes(packages)
    lines = ["Origin: kfab-bundle", "Label: kfab-bundle", f"Suite: {release}", f"Codename: {release}",
             f"Architectures: {arch} all", "Description: Debian packages of a kfab offline bundle"]
    for field in ("MD5Sum", "SHA1", "SHA256"):
        key = "MD5sum" if field == "MD5Sum" else field
        lines += [f"{field}:", f" {sums[key]} {len(packages)} Packages"]
    (repo / "Release").write_text("\n".join(lines) + "\n")
    return [repo / "Packages", repo / "Release"]
