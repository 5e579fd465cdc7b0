"""The images of a bundle: one OCI image layout (blobs by sha256, index.json naming each image) made from this
machine's Podman store, and how it seeds the cluster registry — the registry's HTTP API (OCI distribution),
blob by blob, so the control machine needs neither Podman nor a network beyond the hosts' to do it."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from kfab.provision.image_names import repository_of

REF_NAME = "org.opencontainers.image.ref.name"


class ImageError(Exception):
    pass


def save_layout(images: list[str], layout: Path) -> list[Path]:
    """`podman save` each image into one OCI layout at `layout`; the files written."""
    index = []
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for image in images:
        with tempfile.TemporaryDirectory(prefix="kfab-bundle-image-") as tmp:
            out = Path(tmp, "oci")
            proc = subprocess.run(["podman", "save", "--format", "oci-dir", "-o", str(out), image],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise ImageError(f"image {image!r} (kfab_bundle_images): podman save failed: "
                                 f"{proc.stderr.strip() or proc.stdout.strip()} (build or pull it here first)")
            for blob in (out / "blobs" / "sha256").iterdir():
                shutil.copyfile(blob, layout / "blobs" / "sha256" / blob.name)
            for entry in json.loads((out / "index.json").read_text())["manifests"]:
                entry.setdefault("annotations", {})[REF_NAME] = image
                index.append(entry)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index}, sort_keys=True))
    return sorted(p for p in layout.rglob("*") if p.is_file())


class Registry:
    """A plain-HTTP registry (role registry's) at `address` (host:port)."""

    def __init__(self, address: str, timeout: float = 60):
        self.address = address
        self.timeout = timeout

    def _request(self, method: str, path: str, body=None, headers=None) -> http.client.HTTPResponse:
        host, _, port = self.address.rpartition(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            response.body = response.read()
            return response
        except OSError as exc:
            raise ImageError(f"registry {self.address}: {method} {path}: {exc}") from None
        finally:
            conn.close()

    def _expect(self, response, codes: tuple[int, ...], what: str) -> None:
        if response.status not in codes:
            raise ImageError(f"registry {self.address}: {what}: HTTP {response.status} "
                             f"{response.body[:300].decode(errors='replace')}")

    def push_blob(self, repo: str, digest: str, path: Path) -> None:
        if self._request("HEAD", f"/v2/{repo}/blobs/{digest}").status == 200:
            return
        started = self._request("POST", f"/v2/{repo}/blobs/uploads/")
        self._expect(started, (202,), f"start upload of {repo}@{digest}")
        location = urlsplit(started.getheader("Location"))
        target = location.path + "?" + (location.query + "&" if location.query else "") + f"digest={digest}"
        with open(path, "rb") as f:
            done = self._request("PUT", target, body=f, headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)})
        self._expect(done, (201,), f"upload of {repo}@{digest}")

    def push_manifest(self, repo: str, tag: str, media_type: str, data: bytes) -> None:
        done = self._request("PUT", f"/v2/{repo}/manifests/{tag}", body=data, headers={"Content-Type": media_type})
        self._expect(done, (201,), f"manifest {repo}:{tag}")


def seed(layout: Path, registry: Registry) -> list[str]:
    """Push every image of the layout to the registry under its repository (`localhost/web:1` -> `web:1`)."""
    blobs = layout / "blobs" / "sha256"
    pushed = []
    for entry in json.loads((layout / "index.json").read_text())["manifests"]:
        repo, _, tag = repository_of(entry["annotations"][REF_NAME]).rpartition(":")
        data = (blobs / entry["digest"].split(":", 1)[1]).read_bytes()
        manifest = json.loads(data)
        for blob in [manifest["config"], *manifest.get("layers", [])]:
            registry.push_blob(repo, blob["digest"], blobs / blob["digest"].split(":", 1)[1])
        registry.push_manifest(repo, tag, entry["mediaType"], data)
        pushed.append(f"{repo}:{tag}")
    return pushed
