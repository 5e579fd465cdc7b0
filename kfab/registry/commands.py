"""`kfab image push -i INVENTORY IMAGE`: put an image from the local Podman store into the cluster registry
(role registry, on the first host of group `registry`) and print the name pods use for it.

The push goes to the registry host's inventory address (this machine may not resolve the host's name); pods
pull it by the registry host's name, which every host resolves (/etc/hosts, role common) and trusts over
plain HTTP (registries.conf.d, role registry). Both names reach the same registry.
"""

from __future__ import annotations

import subprocess
import sys

from kfab.provision.api import DEFAULT_PLAYBOOK, ProvisionError, Site, repository_of


def add_commands(subparsers) -> None:
    image = subparsers.add_parser("image", help="container images for the cluster")
    sub = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)
    p = sub.add_parser("push", help="push a local Podman image to the cluster registry",
                       description="Push IMAGE from this machine's Podman store to the cluster registry and "
                                   "print the image name to use in pod specs.")
    p.add_argument("-i", "--inventory", required=True, help="the cluster's inventory (group `registry`)")
    p.add_argument("--playbook", default=DEFAULT_PLAYBOOK,
                   help=f"the play file the cluster was installed with, for role registry's defaults "
                        f"(default {DEFAULT_PLAYBOOK})")
    p.add_argument("image", help="a local image, e.g. localhost/web:1")
    p.set_defaults(func=run_push)


def registry_address(inventory_path: str, playbook: str = DEFAULT_PLAYBOOK) -> tuple[str, str]:
    """(address this machine pushes to, name pods pull by), both host:port; the port is role registry's
    kfab_registry_port as the inventory sets it or the role defaults it."""
    site = Site(inventory_path, playbook)
    hosts = site.group("registry")
    if not hosts:
        raise ProvisionError("no host in group 'registry': add one (role registry runs the registry there)",
                             file=str(site.inventory.path))
    host = hosts[0]
    port = int(site.var(host, "kfab_registry_port"))
    return f"{site.var(host, 'ansible_host', host)}:{port}", f"{host}:{port}"


def run_push(args) -> int:
    try:
        address, name = registry_address(args.inventory, args.playbook)
    except ProvisionError as exc:
        print(f"kfab image push: {exc}", file=sys.stderr)
        return 1
    repository = repository_of(args.image)
    proc = subprocess.run(["podman", "push", "--quiet", "--tls-verify=false", args.image,
                           f"docker://{address}/{repository}"], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"kfab image push: podman push {args.image} to {address} failed: "
              f"{proc.stderr.strip() or proc.stdout.strip()}", file=sys.stderr)
        return 1
    print(f"{name}/{repository}")
    return 0
