"""`kfab up --bundle`: a run of the plays that needs no network beyond the hosts'. The bundle is checked and
unpacked once, its apt repository served from this machine for the run (role common points apt at it and only
at it), kfab installed from its wheelhouse, and after the run its images pushed into the cluster registry.
`kfab plan --bundle` is the same run in check mode: nothing changes, nothing is pushed.

Before any host is contacted the bundle must fit: made by this kfab release (the roles here and the kfab the
bundle installs on the hosts are one release), every member as its manifest says, and every package the plays
install and every image the inventory lists inside it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kfab.provision.api import ProvisionError, Site
from kfab.provision.bundle.archive import BundleError, kfab_release, manifest_of, unpacked
from kfab.provision.bundle.create import IMAGES_DIR, IMAGES_VAR, REPO_DIR, WHEELS_DIR
from kfab.provision.bundle.images import ImageError, Registry, seed
from kfab.provision.bundle.packages import role_packages
from kfab.provision.bundle.serve import DEFAULT_PORT, RepositoryServer, address_towards
from kfab.provision.up import provision


def registry_address(site: Site) -> str | None:
    """host:port this machine reaches the cluster registry at (group `registry`'s first host); None: no registry."""
    hosts = site.group("registry")
    if not hosts:
        return None
    return f"{site.var(hosts[0], 'ansible_host', hosts[0])}:{int(site.var(hosts[0], 'kfab_registry_port'))}"


def check_release(bundle: Path) -> None:
    """The bundle was made by this kfab release (read from its manifest alone: a wrong bundle stops at once)."""
    found = manifest_of(bundle).get("kfab_release")
    expected = kfab_release()
    if found != expected:
        made = f"is for kfab release {found}" if found else "records no kfab release (made by an older kfab)"
        raise BundleError(f"{bundle}: the bundle {made}; this kfab expects release {expected} (expected {expected}, "
                          f"found {found or 'none'}): make the bundle again with this kfab (kfab bundle create), or "
                          "install with the kfab release it was made by")


def check_contents(bundle: Path, manifest: dict, site: Site) -> None:
    """Every package the plays install on the inventory's hosts, and every image it lists, is in the bundle."""
    missing = sorted(set(role_packages(site)) - set(manifest.get("packages", [])))
    if missing:
        raise BundleError(f"{bundle}: the plays install packages the bundle lacks ({', '.join(missing)}): it was "
                          "made for another inventory or play file; make it again with kfab bundle create -i "
                          "this inventory")
    hosts = list(site.inventory.hosts)
    images = [str(i) for i in (site.var(hosts[0], IMAGES_VAR) or [])]
    lacking = [i for i in images if i not in manifest.get("images", [])]
    if lacking:
        raise BundleError(f"{bundle}: the inventory's {IMAGES_VAR} names images the bundle lacks "
                          f"({', '.join(lacking)}); make it again with kfab bundle create")


def up_with_bundle(bundle: Path, inventory: str, playbook: str, extra_vars: list[str], port: int = DEFAULT_PORT,
                   **options) -> int:
    command = "kfab plan --bundle" if options.get("plan") else "kfab up --bundle"
    try:
        check_release(bundle)
        directory, manifest = unpacked(bundle)
        site = Site(inventory, playbook, extra_vars)
        hosts = list(site.inventory.hosts)
        if not hosts:
            raise ProvisionError("the inventory has no hosts", file=inventory)
        check_contents(bundle, manifest, site)
        address = address_towards(str(site.var(hosts[0], "ansible_host", hosts[0])))
        server = RepositoryServer(directory / REPO_DIR, address, port)
    except (BundleError, ProvisionError, OSError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        print(f"{command}: nothing was changed on any host", file=sys.stderr)
        return 1
    print(f"bundle {bundle}: Debian {manifest['release']} {manifest['architecture']}, "
          f"{sum(1 for f in manifest['files'] if f.endswith('.deb'))} packages, served at {server.url}", flush=True,
          file=sys.stderr if options.get("as_json") else sys.stdout)   # --json: stdout is the plan alone
    offline = {"package_repository": server.url, "package_repository_release": manifest["release"],
               "package_proxy": "", "kfab_wheelhouse": str(directory / WHEELS_DIR)}
    with server:
        code = provision(inventory, playbook, [*extra_vars, json.dumps(offline)], **options)
    if options.get("check") and manifest.get("images") and code in (0, 2):
        print(f"the run would push the bundle's images into the cluster registry: {', '.join(manifest['images'])}",
              file=sys.stderr)
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
