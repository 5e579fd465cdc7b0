"""`kfab up --bundle`: a run of the plays that needs no network beyond the hosts'. The bundle is checked and
unpacked once, its apt repository served from this machine for the run (role common points apt at it and only
at it), kfab installed from its wheelhouse, and after the run its images pushed into the cluster registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kfab.provision.api import ProvisionError, Site
from kfab.provision.bundle.archive import BundleError, unpacked
from kfab.provision.bundle.create import IMAGES_DIR, REPO_DIR, WHEELS_DIR
from kfab.provision.bundle.images import ImageError, Registry, seed
from kfab.provision.bundle.serve import DEFAULT_PORT, RepositoryServer, address_towards
from kfab.provision.up import provision


def registry_address(site: Site) -> str | None:
    """host:port this machine reaches the cluster registry at (group `registry`'s first host); None: no registry."""
    hosts = site.group("registry")
    if not hosts:
        return None
    return f"{site.var(hosts[0], 'ansible_host', hosts[0])}:{int(site.var(hosts[0], 'kfab_registry_port'))}"


def up_with_bundle(bundle: Path, inventory: str, playbook: str, extra_vars: list[str], port: int = DEFAULT_PORT,
                   **options) -> int:
    try:
        directory, manifest = unpacked(bundle)
        site = Site(inventory, playbook, extra_vars)
        hosts = list(site.inventory.hosts)
        if not hosts:
            raise ProvisionError("the inventory has no hosts", file=inventory)
        address = address_towards(str(site.var(hosts[0], "ansible_host", hosts[0])))
        server = RepositoryServer(directory / REPO_DIR, address, port)
    except (BundleError, ProvisionError, OSError) as exc:
        print(f"kfab up --bundle: {exc}", file=sys.stderr)
        return 1
    print(f"bundle {bundle}: Debian {manifest['release']} {manifest['architecture']}, "
          f"{sum(1 for f in manifest['files'] if f.endswith('.deb'))} packages, served at {server.url}", flush=True)
    offline = {"package_repository": server.url, "package_repository_release": manifest["release"],
               "package_proxy": "", "kfab_wheelhouse": str(directory / WHEELS_DIR)}
    with server:
        code = provision(inventory, playbook, [*extra_vars, json.dumps(offline)], **options)
    if code != 0 or not manifest.get("images") or options.get("check"):
        return code
    address = registry_address(site)
    if address is None:
        print(f"kfab up --bundle: the bundle has images ({', '.join(manifest['images'])}) but the inventory no "
              "registry group to put them in", file=sys.stderr)
        return 1
    try:
        pushed = seed(directory / IMAGES_DIR, Registry(address))
    except ImageError as exc:
        print(f"kfab up --bundle: {exc}", file=sys.stderr)
        return 1
    name = f"{site.group('registry')[0]}:{address.rsplit(':', 1)[1]}"
    print(f"images in the cluster registry: {', '.join(f'{name}/{p}' for p in pushed)}")
    return 0
