"""The EncryptionConfiguration of data at rest (kube-apiserver's --encryption-provider-config file): its keys are
made at the PKI step, like the CA and the ServiceAccount key, and shared by every API server of a cluster.

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets]
        providers:
          - aesgcm: {keys: [{name: key2, secret: <base64 of 32 bytes>}, {name: key1, secret: ...}]}
          - identity: {}

The first provider's first key writes; the others only read. `identity` first means encryption is off.
kfab.store.encryption applies it to stored values.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CONFIG_FILE = "encryption-config.yaml"
DEFAULT_RESOURCES = ("secrets",)


class EncryptionConfigError(ValueError):
    """A configuration that cannot be used, or a stored value no configured provider can read."""


@dataclass(frozen=True)
class Key:
    name: str
    secret: bytes  # 16, 24 or 32 bytes

    @classmethod
    def new(cls, name: str) -> "Key":
        return cls(name, AESGCM.generate_key(bit_length=256))


@dataclass
class ResourceProviders:
    """One `resources:` entry: which resources, the AES-GCM keys (write key first), and whether identity reads."""

    resources: list[str]
    keys: list[Key] = field(default_factory=list)
    identity: bool = True
    identity_first: bool = False  # identity listed first: writes stay plaintext (encryption turned off)


@dataclass
class EncryptionConfig:
    entries: list[ResourceProviders]

    # ---- the file ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> "EncryptionConfig":
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as e:
            raise EncryptionConfigError(f"{path}: cannot read the encryption configuration: {e}") from None
        if not isinstance(doc, dict) or doc.get("kind") != "EncryptionConfiguration":
            raise EncryptionConfigError(f"{path}: not an EncryptionConfiguration")
        entries = []
        for i, entry in enumerate(doc.get("resources") or []):
            entries.append(_entry(path, i, entry))
        return cls(entries)

    def dump(self) -> bytes:
        resources = []
        for entry in self.entries:
            providers: list[dict] = []
            if entry.keys:
                providers.append({"aesgcm": {"keys": [{"name": k.name, "secret": base64.b64encode(k.secret).decode()}
                                                      for k in entry.keys]}})
            if entry.identity:
                providers.insert(0 if entry.identity_first else len(providers), {"identity": {}})
            resources.append({"resources": list(entry.resources), "providers": providers})
        doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
               "resources": resources}
        return yaml.safe_dump(doc, sort_keys=False).encode()

    def save(self, path: Path) -> None:
        """Written 0600 through a temporary file, so a reader never sees half a key list."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.dump())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def new(cls, resources=DEFAULT_RESOURCES) -> "EncryptionConfig":
        return cls([ResourceProviders(list(resources), [Key.new("key1")], identity=True)])

    # ---- rotation steps -----------------------------------------------------------------------------
    def with_new_write_key(self) -> "EncryptionConfig":
        """Step 1 of a rotation: a fresh key first (it writes), the old ones kept (they still read)."""
        entries = []
        for e in self.entries:
            taken = {k.name for k in e.keys}
            n = len(taken) + 1
            while f"key{n}" in taken:
                n += 1
            entries.append(ResourceProviders(e.resources, [Key.new(f"key{n}"), *e.keys], e.identity, False))
        return EncryptionConfig(entries)

    def with_write_key_reading_only(self) -> "EncryptionConfig":
        """The first key moved last: every server learns to read it before any writes with it (HA rotation)."""
        return EncryptionConfig([ResourceProviders(e.resources, [*e.keys[1:], *e.keys[:1]], e.identity,
                                                   e.identity_first) for e in self.entries])

    def without_old_keys(self) -> "EncryptionConfig":
        """Last step of a rotation, once everything is rewritten: only the write key (and identity) remain."""
        return EncryptionConfig([ResourceProviders(e.resources, e.keys[:1], e.identity, e.identity_first)
                                 for e in self.entries])


def _entry(path, i: int, entry: object) -> ResourceProviders:
    where = f"{path}: resources[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("resources"), list) or not entry["resources"]:
        raise EncryptionConfigError(f"{where}: needs a non-empty resources list")
    result = ResourceProviders([str(r) for r in entry["resources"]], identity=False)
    for j, provider in enumerate(entry.get("providers") or []):
        if not isinstance(provider, dict) or len(provider) != 1:
            raise EncryptionConfigError(f"{where}.providers[{j}]: exactly one provider per entry")
        (kind, spec), = provider.items()
        if kind == "identity":
            result.identity = True
            result.identity_first = j == 0
        elif kind == "aesgcm":
            for k, key in enumerate((spec or {}).get("keys") or []):
                try:
                    secret = base64.b64decode(str(key["secret"]), validate=True)
                except (KeyError, TypeError, ValueError):
                    raise EncryptionConfigError(f"{where}.providers[{j}].aesgcm.keys[{k}]: secret must be base64") \
                        from None
                if len(secret) not in (16, 24, 32):
                    raise EncryptionConfigError(f"{where}.providers[{j}].aesgcm.keys[{k}]: secret must be 16, 24 or 32 "
                                          f"bytes, got {len(secret)}")
                result.keys.append(Key(str(key.get("name") or ""), secret))
        else:
            raise EncryptionConfigError(f"{where}.providers[{j}]: provider {kind} is not supported (aesgcm, identity)")
    if not result.keys and not result.identity:
        raise EncryptionConfigError(f"{where}: no providers")
    return result


def ensure_config(path: Path) -> EncryptionConfig:
    """The configuration at `path`, made with a fresh key when there is none (the PKI step's job)."""
    path = Path(path)
    if not path.exists():
        EncryptionConfig.new().save(path)
    return EncryptionConfig.load(path)
