"""Image names as the cluster registry holds them: what `kfab image push` and `kfab up --bundle` push to."""

from __future__ import annotations


def repository_of(image: str) -> str:
    """`localhost/web:1` -> `web:1`; `quay.io/org/app:2` -> `org/app:2`; `web` -> `web:latest`."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        image = rest
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        image += ":latest"
    return image
