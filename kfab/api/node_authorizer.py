"""The Node authorizer (kube-apiserver's --authorization-mode=Node,RBAC): a node reads only the Secrets,
ConfigMaps, PersistentVolumeClaims and PersistentVolumes that pods bound to it use.

A node identity is a user `system:node:<name>` in group `system:nodes` (the node agent's certificate). For
those four kinds its requests are decided here, from a graph kept current from the store:

    pod (spec.nodeName) -> secrets (volumes, projected sources, env, envFrom, imagePullSecrets, inline iSCSI
                           CHAP), configmaps (volumes, projected sources, env, envFrom), claims (volumes,
                           generic ephemeral volumes) -> volumes (claim.spec.volumeName) -> their CHAP secrets

Only `get` of one named object is allowed, and only along that graph; everything else a node does (its
Node, Lease, pods, events) is RBAC's `system:node` role, with NodeRestriction admission
(kfab.api.node_restriction) narrowing writes to its own objects. Any other user is RBAC's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from kfab.api.auth import RequestAttributes
from kfab.store.base import Store
from kfab.objects.meta import meta_of, spec_of

log = logging.getLogger(__name__)

NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
GRAPH_KINDS = {"secrets": "Secret", "configmaps": "ConfigMap", "persistentvolumeclaims": "PersistentVolumeClaim",
               "persistentvolumes": "PersistentVolume"}
WATCHED = ("/registry/pods/", "/registry/persistentvolumeclaims/", "/registry/persistentvolumes/")
RESYNC_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)


def node_name(user) -> str | None:
    """The node a user is, or None (upstream's NodeIdentifier: name system:node:<n> and group system:nodes)."""
    if user is None or NODES_GROUP not in user.groups or not user.name.startswith(NODE_USER_PREFIX):
        return None
    return user.name[len(NODE_USER_PREFIX):] or None


def pod_references(pod: dict) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every Secret, ConfigMap and claim a pod uses."""
    meta, spec = meta_of(pod), spec_of(pod)
    ns, refs = meta.get("namespace") or "", set()

    def add(kind: str, name: object) -> None:
        if isinstance(name, str) and name:
            refs.add((kind, ns, name))

    for ref in spec.get("imagePullSecrets") or []:
        add("Secret", (ref or {}).get("name"))
    for volume in spec.get("volumes") or []:
        volume = volume or {}
        add("Secret", (volume.get("secret") or {}).get("secretName"))
        add("ConfigMap", (volume.get("configMap") or {}).get("name"))
        add("PersistentVolumeClaim", (volume.get("persistentVolumeClaim") or {}).get("claimName"))
        add("Secret", ((volume.get("iscsi") or {}).get("secretRef") or {}).get("name"))
        if volume.get("ephemeral") is not None:  # a generic ephemeral volume's claim is <pod>-<volume>
            add("PersistentVolumeClaim", f"{meta.get('name', '')}-{volume.get('name', '')}")
        for source in (volume.get("projected") or {}).get("sources") or []:
            add("Secret", ((source or {}).get("secret") or {}).get("name"))
            add("ConfigMap", ((source or {}).get("configMap") or {}).get("name"))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            for env in (container or {}).get("env") or []:
                source = (env or {}).get("valueFrom") or {}
                add("Secret", (source.get("secretKeyRef") or {}).get("name"))
                add("ConfigMap", (source.get("configMapKeyRef") or {}).get("name"))
            for env_from in (container or {}).get("envFrom") or []:
                add("Secret", ((env_from or {}).get("secretRef") or {}).get("name"))
                add("ConfigMap", ((env_from or {}).get("configMapRef") or {}).get("name"))
    return refs


class NodeGraph:
    """Pods by node, claims' volumes and volumes' CHAP secrets, kept current from store watches."""

    def __init__(self, store: Store):
        self._store = store
        self._pods: dict[str, tuple[str, set]] = {}  # store key -> (node, references)
        self._claims: dict[tuple[str, str], str] = {}  # (namespace, name) -> bound volume name
        self._volume_secrets: dict[str, set] = {}  # volume name -> {(namespace, secret name)}
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for prefix in WATCHED:
            revision = await self._relist(prefix)
            self._tasks.append(asyncio.create_task(self._follow(prefix, revision), name=f"node-graph {prefix}"))
        self._synced.set()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # ---- the cache ----------------------------------------------------------------------------------
    def _put(self, key: str, value: bytes | None) -> None:
        try:
            obj = json.loads(value) if value else None
        except ValueError:
            obj = None
        spec = (obj or {}).get("spec") or {}
        if key.startswith("/registry/pods/"):
            node = spec.get("nodeName")
            if obj is None or not node:
                self._pods.pop(key, None)
            else:
                self._pods[key] = (node, pod_references(obj))
        elif key.startswith("/registry/persistentvolumeclaims/"):
            parts = key.split("/")  # /registry/persistentvolumeclaims/<namespace>/<name>
            ident = (parts[3], parts[4]) if len(parts) >= 5 else ("", "")
            if obj is None or not spec.get("volumeName"):
                self._claims.pop(ident, None)
            else:
                self._claims[ident] = spec["volumeName"]
        elif key.startswith("/registry/persistentvolumes/"):
            name = key.rsplit("/", 1)[-1]
            ref = ((spec.get("iscsi") or {}).get("secretRef") or {}) if obj is not None else {}
            if ref.get("name"):
                self._volume_secrets[name] = {(ref.get("namespace") or "default", ref["name"])}
            else:
                self._volume_secrets.pop(name, None)

    async def _relist(self, prefix: str) -> int:
        kvs, revision = await self._store.list(prefix)
        for key in self._keys(prefix):
            self._put(key, None)
        for kv in kvs:
            self._put(kv.key, kv.value)
        return revision

    def _keys(self, prefix: str) -> list[str]:
        if prefix == "/registry/pods/":
            return list(self._pods)
        if prefix == "/registry/persistentvolumeclaims/":
            return [f"{prefix}{ns}/{name}" for ns, name in self._claims]
        return [f"{prefix}{name}" for name in self._volume_secrets]

    async def _follow(self, prefix: str, revision: int) -> None:
        failures = 0
        while True:
            try:
                if failures:
                    revision = await self._relist(prefix)
                async with contextlib.aclosing(self._store.watch(prefix, revision)) as events:
                    async for event in events:
                        failures = 0
                        self._put(event.kv.key, event.kv.value if event.type == "PUT" else None)
                        revision = event.kv.mod_revision
                failures = 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # compacted, store down: keep the last graph, then resync
                delay = RESYNC_BACKOFF[min(failures, len(RESYNC_BACKOFF) - 1)]
                failures += 1
                log.warning("node graph: watch on %s failed (%s); resyncing in %.1fs", prefix, e, delay)
                await asyncio.sleep(delay)

    # ---- questions ----------------------------------------------------------------------------------
    def related(self, node: str, kind: str, namespace: str, name: str) -> bool:
        """Is the object used by a pod bound to `node` (directly, or through a claim and its volume)?"""
        for pod_node, refs in self._pods.values():
            if pod_node != node:
                continue
            if (kind, namespace, name) in refs:
                return True
            for ref_kind, ns, claim in refs:
                if ref_kind != "PersistentVolumeClaim":
                    continue
                volume = self._claims.get((ns, claim))
                if volume is None:
                    continue
                if kind == "PersistentVolume" and volume == name:
                    return True
                if kind == "Secret" and (namespace, name) in self._volume_secrets.get(volume, ()):
                    return True
        return False


class NodeAuthorizer:
    """Node authorization in front of RBAC; every other method of the RBAC authorizer passes through."""

    def __init__(self, rbac, graph: NodeGraph):
        self.rbac = rbac
        self.graph = graph

    async def start(self) -> None:
        await self.rbac.start()
        await self.graph.start()

    async def stop(self) -> None:
        await self.graph.stop()
        await self.rbac.stop()

    def decide(self, attrs: RequestAttributes) -> tuple[bool, str] | None:
        """(allowed, reason) when this authorizer decides; None leaves the request to RBAC."""
        node = node_name(attrs.user)
        kind = GRAPH_KINDS.get(attrs.resource) if attrs.resource_request and attrs.api_group == "" else None
        if node is None or kind is None:
            return None
        # Upstream's reasons, word for word (plugin/pkg/auth/authorizer/node/node_authorizer.go).
        if attrs.verb not in ("get", "list", "watch"):
            return False, "can only read resources of this type"
        if attrs.subresource:
            return False, "cannot read subresource"
        if kind != "PersistentVolume" and not attrs.namespace:
            return False, "can only read namespaced object of this type"
        if not attrs.name:
            return False, "No Object name found"
        if not self.graph.synced:
            return False, "node authorizer: the graph has not loaded yet"
        if self.graph.related(node, kind, attrs.namespace, attrs.name):
            return True, ""
        return False, f"no relationship found between node '{node}' and this object"

    async def authorize(self, attrs: RequestAttributes) -> tuple[bool, str]:
        decided = self.decide(attrs)
        if decided is not None:
            return decided
        return await self.rbac.authorize(attrs)

    def check(self, attrs: RequestAttributes) -> tuple[bool, str]:
        decided = self.decide(attrs)
        return decided if decided is not None else self.rbac.check(attrs)

    def __getattr__(self, name):  # role_rules, rules_for, revision, wait_for_revision: RBAC's
        return getattr(self.rbac, name)
