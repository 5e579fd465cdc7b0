"""Build a wheelhouse (kfab + every dependency as wheels) on the control machine, cached by content.

The cache key hashes pyproject.toml and every file of the `kfab` package, so an unchanged tree reuses the
wheels and a changed one builds anew. The build runs on a copy of the sources: building in the work tree
would leave build/ and *.egg-info behind. Hosts install it with the provisioner's `venv` module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path.home() / ".cache" / "kfab" / "wheelhouse"
SOURCES = ("pyproject.toml", "README.md")
KEEP = 5


class WheelhouseError(Exception):
    pass


def source_digest(repo: Path = REPO) -> str:
    digest = hashlib.sha256()
    files = [repo / s for s in SOURCES if (repo / s).exists()]
    files += sorted(p for p in (repo / "kfab").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def build(cache: Path = DEFAULT_CACHE, repo: Path = REPO) -> Path:
    """The wheelhouse directory for the current sources (built once per content)."""
    target = cache / source_digest(repo)
    if (target / ".complete").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kfab-wheel-") as tmp:
        src = Path(tmp, "src")
        src.mkdir()
        for name in SOURCES:
            if (repo / name).exists():
                shutil.copy2(repo / name, src / name)
        shutil.copytree(repo / "kfab", src / "kfab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        out = Path(tmp, "wheels")
        # SOURCE_DATE_EPOCH: wheels built here get fixed timestamps, so the same sources give the same bytes
        # (an offline bundle made twice from one tree is the same file).
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(out), str(src)],
                              capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"})
        if proc.returncode != 0:
            raise WheelhouseError(f"pip wheel of {repo} failed:\n{proc.stdout}{proc.stderr}")
        partial = cache / f".{target.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(out, partial)
        (partial / ".complete").write_text("")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    _prune(cache, keep=KEEP)
    return target


def _prune(cache: Path, keep: int) -> None:
    """Each source change makes a new wheelhouse (~45 MB): keep only the newest few."""
    built = sorted((d for d in cache.iterdir() if (d / ".complete").exists()), key=lambda d: d.stat().st_mtime)
    for old in built[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    try:
        print(build())
    except WheelhouseError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
