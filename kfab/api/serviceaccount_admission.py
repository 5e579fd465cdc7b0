"""The ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount): a new Pod runs as an existing
ServiceAccount and, unless automountServiceAccountToken is false (on the pod, else on the ServiceAccount),
gets the projected `kube-api-access-<random>` volume — a bound token, the cluster CA, its namespace —
mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container.
"""

from __future__ import annotations

import asyncio
import json
import random

from kfab.objects.errors import APIError
from kfab.objects.registry import REGISTRY
from kfab.store.base import Store
from kfab.objects.meta import meta_of

DEFAULT_SERVICE_ACCOUNT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION = 3607  # kube's: an hour and a bit, so its tokens are told apart from others in audits
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
# k8s.io/apimachinery/pkg/util/rand.String's alphabet (no vowels, no confusable characters).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The controller makes `default` shortly after its namespace: wait for it as the plugin does (up to 10 tries).
DEFAULT_ACCOUNT_ATTEMPTS = 10
_SERVICE_ACCOUNT = REGISTRY.by_kind("v1", "ServiceAccount")


def projected_token_volume(name: str) -> dict:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


async def admit_pod(store: Store, pod: dict, namespace: str) -> None:
    """Check the pod's ServiceAccount exists and add its token volume (changes pod in place)."""
    spec = pod.setdefault("spec", {})
    if (meta_of(pod).get("annotations") or {}).get("kubernetes.io/config.mirror"):
        return  # mirror pods of static pods have no ServiceAccount, as upstream
    name = spec.get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT
    account = await _service_account(store, namespace, name)
    if account is None:
        pod_name = meta_of(pod).get("name") or meta_of(pod).get("generateName", "")
        raise APIError(403, "Forbidden", f'pods "{pod_name}" is forbidden: error looking up service account '
                       f'{namespace}/{name}: serviceaccount "{name}" not found', name=pod_name, kind="pods")
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return
    containers = [c for key in ("initContainers", "containers", "ephemeralContainers")
                  for c in spec.get(key) or [] if isinstance(c, dict)]
    needing = [c for c in containers if not any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH
                                                for m in c.get("volumeMounts") or [])]
    if not needing:
        return
    volumes = spec.setdefault("volumes", [])
    taken = {v.get("name") for v in volumes if isinstance(v, dict)}
    volume_name = _volume_name(taken)
    volumes.append(projected_token_volume(volume_name))
    for container in needing:
        container.setdefault("volumeMounts", []).append(
            {"name": volume_name, "readOnly": True, "mountPath": MOUNT_PATH})


def _volume_name(taken: set) -> str:
    while True:
        name = VOLUME_PREFIX + "".join(random.choice(_ALPHABET) for _ in range(5))
        if name not in taken:
            return name


async def _service_account(store: Store, namespace: str, name: str) -> dict | None:
    attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
    key = _SERVICE_ACCOUNT.store_key(namespace, name)
    for attempt in range(attempts):
        kv = await store.get(key)
        if kv is not None:
            return json.loads(kv.value)
        if attempt + 1 < attempts:
            await asyncio.sleep(random.uniform(0.1, 0.2))
    return None
