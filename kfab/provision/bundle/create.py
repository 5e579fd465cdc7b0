"""`kfab bundle create`: everything an inventory's hosts need for `kfab up`, in one file made on a machine that is
online — the .deb closure of the roles' packages (resolved by apt on a host of the hosts' Debian release), kfab's
wheelhouse, and the inventory's images (`kfab_bundle_images`)."""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from kfab.install.wheelhouse import WheelhouseError, build
from kfab.provision.api import HostUnreachable, ProvisionError, Site
from kfab.provision.bundle.archive import BundleError, Member, kfab_release, write
from kfab.provision.bundle.images import ImageError, save_layout
from kfab.provision.bundle.packages import PackageError, download_closure, release_of, role_packages, write_index

IMAGES_VAR = "kfab_bundle_images"
REPO_DIR, WHEELS_DIR, IMAGES_DIR = "debs", "wheels", "images"


class Steps:
    """One line per finished step with its count and time, and the total at the end (terminal or not); on a
    terminal also a live line (rich) for the step under way: what, files done of how many, elapsed time."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.live = stream.isatty()
        self.started = self.last = time.monotonic()

    @contextmanager
    def running(self, what: str):
        """Yields `count(done, total)` for the step's files."""
        if not self.live:
            yield lambda done, total: None
            return
        columns = (SpinnerColumn(), TextColumn(f"bundle: {what}"), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(file=self.stream), transient=True) as progress:
            task = progress.add_task(what, total=None)
            yield lambda done, total: progress.update(task, completed=done, total=total)

    def done(self, text: str) -> None:
        now = time.monotonic()
        print(f"bundle: {text} ({now - self.last:.1f} s)", file=self.stream, flush=True)
        self.last = now

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _size(paths: list[Path]) -> str:
    return f"{sum(p.stat().st_size for p in paths) / 1e6:.1f} MB"


def create(inventory: str, playbook: str, out: Path, resolve_on: str | None = None,
           extra_vars: list[str] = ()) -> int:
    steps = Steps()
    try:
        site = Site(inventory, playbook, extra_vars)
        hosts = list(site.inventory.hosts)
        if not hosts:
            raise ProvisionError("the inventory has no hosts", file=inventory)
        names = role_packages(site)
        images = [str(i) for i in (site.var(hosts[0], IMAGES_VAR) or [])]
        resolver = resolve_on or hosts[0]
        with tempfile.TemporaryDirectory(prefix="kfab-bundle-", dir=out.parent) as tmp:
            tmp = Path(tmp)
            with steps.running(f"apt on {resolver} resolves and downloads {len(names)} packages' closure") as count:
                remote = site.connect(resolver)
                try:
                    release, arch = release_of(remote)
                    debs = download_closure(remote, names, tmp / REPO_DIR, count)
                finally:
                    remote.close()
            index = write_index(tmp / REPO_DIR, release, arch)
            steps.done(f"{len(debs)} packages ({_size(debs)}, Debian {release} {arch}) for the {len(names)} the roles "
                       f"install, resolved by apt on {resolver}")
            with steps.running("kfab's wheelhouse (built once per source tree)"):
                wheelhouse = build()
            wheels = sorted(p for p in wheelhouse.iterdir() if p.suffix == ".whl")
            steps.done(f"{len(wheels)} wheels ({_size(wheels)})")
            with steps.running(f"saving {len(images)} images"):
                layout = save_layout(images, tmp / IMAGES_DIR) if images else []
            steps.done(f"{len(images)} images ({_size(layout)})")
            members = [Member(f"{REPO_DIR}/{p.name}", p) for p in debs + index]
            members += [Member(f"{WHEELS_DIR}/{p.name}", p) for p in wheels]
            members += [Member(p.relative_to(tmp).as_posix(), p) for p in layout]
            with steps.running(f"writing {out}"):
                identity = write(out, {"release": release, "architecture": arch, "packages": names, "images": images,
                                       "kfab_release": kfab_release(), "wheelhouse": wheelhouse.name}, members)
    except HostUnreachable as exc:
        print(f"kfab bundle create: {resolver}: {exc}", file=sys.stderr)
        return 1
    except (ProvisionError, PackageError, ImageError, WheelhouseError, BundleError, OSError) as exc:
        print(f"kfab bundle create: {exc}", file=sys.stderr)
        return 1
    steps.done(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(members)} files, id {identity[:20]})")
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB in {steps.elapsed:.1f} s; check a copy with "
          f"`kfab bundle verify {out}`, install with `kfab up -i {inventory} --bundle {out}`")
    return 0
