"""`kfab kubeconfig -i INVENTORY [-o FILE]`: the cluster admin's kubeconfig, from the CA and the admin pair that
`kfab up` keeps on this machine (role pki's kfab_pki_dir), for the first control-plane host's API server.

Without -o it is merged into ~/.kube/config (the first file of $KUBECONFIG if set), as kind and k3d do:
a cluster, a user and a context all named after the cluster (kfab_cluster_name), replacing earlier entries of
those names and becoming the current context. `-o FILE` writes a file of its own; `-o -` prints it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml
from kfab.ops.cluster import Cluster, OpsError
from kfab.pki.ca import write_private

SECTIONS = ("clusters", "users", "contexts")


def default_kubeconfig_path() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first).expanduser() if first else Path("~/.kube/config").expanduser()


def merge(existing: dict, new: dict) -> dict:
    """`new`'s clusters/users/contexts replace same-named entries of `existing`; new becomes current."""
    merged = dict(existing)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section in SECTIONS:
        names = {entry["name"] for entry in new[section]}
        kept = [e for e in (existing.get(section) or []) if isinstance(e, dict) and e.get("name") not in names]
        merged[section] = kept + new[section]
    merged["current-context"] = new["current-context"]
    return merged


def read_kubeconfig(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise OpsError(f"{path}: cannot merge into it: {exc}") from None
    if not isinstance(data, dict) or any(not isinstance(data.get(s) or [], list) for s in SECTIONS):
        raise OpsError(f"{path}: not a kubeconfig (a mapping with lists clusters/users/contexts); "
                       f"nothing written (use -o FILE for a file of its own)")
    return data


def run(args) -> int:
    try:
        if args.user or args.group or args.server or args.data_dir:
            raise OpsError("with -i INVENTORY, --data-dir/--user/--group/--server do not apply "
                           "(the admin of the inventory's cluster is written)")
        cluster = Cluster(args.inventory, args.playbook)
        config = cluster.admin_kubeconfig()
        text = yaml.safe_dump(config, sort_keys=False)
        if args.output and str(args.output) == "-":
            sys.stdout.write(text)
            return 0
        if args.output:
            write_private(Path(args.output), text.encode())
            print(f"wrote {args.output} (context {cluster.name}, server {cluster.server_url})", file=sys.stderr)
            return 0
        path = default_kubeconfig_path()
        merged = merge(read_kubeconfig(path), config)
        write_private(path, yaml.safe_dump(merged, sort_keys=False).encode())
        print(f"merged context {cluster.name} (server {cluster.server_url}) into {path}; it is the current "
              f"context: kubectl get nodes", file=sys.stderr)
        return 0
    except OpsError as exc:
        print(f"kfab kubeconfig: {exc}", file=sys.stderr)
        return 1
