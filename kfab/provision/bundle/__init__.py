"""The offline bundle (issue 18): `kfab bundle create` on an online machine (create.py), `kfab bundle verify` of a
copy (archive.py), `kfab up --bundle` with no network beyond the hosts' (offline.py: the bundle's apt repository
served from this machine, serve.py; its images pushed into the cluster registry, images.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from kfab.provision.bundle.archive import BundleError, read
from kfab.provision.bundle.create import create
from kfab.provision.bundle.offline import up_with_bundle
from kfab.provision.bundle.serve import DEFAULT_PORT

__all__ = ["DEFAULT_PORT", "create", "up_with_bundle", "verify"]


def verify(path: Path) -> int:
    """`kfab bundle verify`: every member against the manifest; 0 and a summary, or 1 naming the bad member."""
    try:
        opened = read(path)
    except BundleError as exc:
        print(f"kfab bundle verify: {exc}", file=sys.stderr)
        return 1
    files = opened.manifest["files"]
    print(f"{path}: OK — {len(files)} files checked ({sum(f['size'] for f in files.values()) / 1e6:.1f} MB), "
          f"Debian {opened.manifest['release']} {opened.manifest['architecture']}, "
          f"{len(opened.manifest['images'])} images, id {opened.identity[:20]}")
    return 0
