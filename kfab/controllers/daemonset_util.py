"""DaemonSet decisions as pure functions (pkg/controller/daemon/util and daemon_controller.go): which nodes
should run a daemon pod, the pod for a node, the ControllerRevision of a template, rolling-update budgets.
The controller in daemonset.py reads the caches and writes; everything it decides is here."""

from __future__ import annotations

import copy
import time

from kfab.controllers.deployment_util import resolve_int_or_percent, template_hash
from kfab.controllers.podutil import pod_from_template
from kfab.machinery.controller import owner_ref
from kfab.objects.node_affinity import matches_node_selector_and_affinity
from kfab.objects.taints import tolerated
from kfab.objects.meta import meta_of, spec_of

REVISION_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

# AddOrUpdateDaemonPodTolerations: daemon pods stay through node problems the node lifecycle controller
# would evict others for, and go onto nodes under pressure or cordoned.
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": "NoSchedule"}


def _spec(obj: dict) -> dict:
    return spec_of(obj)


def template_generation(ds: dict) -> str:
    return ((ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)) or ""


def update_strategy(ds: dict) -> str:
    return (_spec(ds).get("updateStrategy") or {}).get("type") or "RollingUpdate"


# --- which nodes ----------------------------------------------------------------------------------------

def with_daemon_tolerations(pod_spec: dict) -> dict:
    """The pod spec with the default DaemonSet tolerations added or updated (AddOrUpdateTolerationInPodSpec:
    a toleration of the same key/operator/effect is replaced, so tolerationSeconds goes)."""
    spec = copy.deepcopy(pod_spec)
    wanted = list(DEFAULT_TOLERATIONS) + ([HOST_NETWORK_TOLERATION] if spec.get("hostNetwork") else [])
    tolerations = [t for t in spec.get("tolerations") or []
                   if not any(_same_toleration(t, w) for w in wanted)]
    spec["tolerations"] = tolerations + [dict(w) for w in wanted]
    return spec


def _same_toleration(a: dict, b: dict) -> bool:
    return all((a.get(k) or "") == (b.get(k) or "") for k in ("key", "effect")) and \
        (a.get("operator") or "Equal") == b.get("operator")


def node_should_run(ds: dict, node: dict) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run a new daemon pod there, may keep running one there). The node's
    own taints count, as upstream: an untolerated NoSchedule taint stops new pods, NoExecute stops all."""
    pod_spec = with_daemon_tolerations(_spec(_spec(ds).get("template") or {}))
    name = node["metadata"]["name"]
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != name:
        return False, False
    if not matches_node_selector_and_affinity({"spec": pod_spec}, node):
        return False, False
    untolerated = [t for t in _spec(node).get("taints") or []
                   if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(pod_spec["tolerations"], t)]
    if not untolerated:
        return True, True
    return False, not any(t.get("effect") == "NoExecute" for t in untolerated)


def target_node(pod: dict) -> str | None:
    """GetTargetNodeName: the node a daemon pod runs on, or is pinned to by its metadata.name node affinity."""
    spec = _spec(pod)
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and \
                    len(field.get("values") or []) == 1:
                return field["values"][0]
    return None


def pinned_to(affinity: dict | None, node: str) -> dict:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes exactly "metadata.name In
    [node]" (the node was already found to match the rest); the scheduler then binds the pod there."""
    affinity = copy.deepcopy(affinity or {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    return affinity


def new_pod(ds: dict, template: dict, node: str, revision_hash: str) -> dict:
    """The daemon pod for one node: the template with the default tolerations, pinned to the node."""
    labels = {REVISION_LABEL: revision_hash}
    if template_generation(ds):
        labels[TEMPLATE_GENERATION_LABEL] = template_generation(ds)
    pod = pod_from_template(template, ds, f"{ds['metadata']['name']}-", labels)
    pod["spec"] = with_daemon_tolerations(pod["spec"])
    pod["spec"]["affinity"] = pinned_to(pod["spec"].get("affinity"), node)
    return pod


# --- revisions -----------------------------------------------------------------------------------------

def revision_data(ds: dict) -> dict:
    """What a DaemonSet's ControllerRevision records (getPatch): the template, as a replace patch, so that
    `kubectl rollout undo` can apply it to the DaemonSet as a strategic merge patch."""
    template = copy.deepcopy(_spec(ds).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_hash(ds: dict, collision_count: int = 0) -> str:
    return template_hash(_spec(ds).get("template") or {}, collision_count or None)


def new_revision(ds: dict, number: int, collision_count: int = 0) -> dict:
    hash_ = revision_hash(ds, collision_count)
    labels = dict((((_spec(ds).get("template") or {}).get("metadata") or {}).get("labels") or {}),
                  **{REVISION_LABEL: hash_})
    meta = {"name": f"{ds['metadata']['name']}-{hash_}", "namespace": ds["metadata"]["namespace"],
            "labels": labels, "ownerReferences": [owner_ref(ds)]}
    if ds["metadata"].get("annotations"):
        meta["annotations"] = dict(ds["metadata"]["annotations"])   # kubernetes.io/change-cause for history
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta, "data": revision_data(ds),
            "revision": number}


def template_of(revision: dict) -> dict:
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def is_updated(pod: dict, revision_hash_: str, generation: str) -> bool:
    """IsPodUpdated: the pod is of the current template, by revision hash or (older pods) by generation."""
    labels = meta_of(pod).get("labels") or {}
    return labels.get(REVISION_LABEL) == revision_hash_ or (
        bool(generation) and labels.get(TEMPLATE_GENERATION_LABEL) == generation)


# --- rolling update ------------------------------------------------------------------------------------

def surge_and_unavailable(ds: dict, desired: int) -> tuple[int, int]:
    """updatedDesiredNodeCounts: (maxSurge, maxUnavailable) for `desired` nodes; never both 0."""
    rolling = (_spec(ds).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = resolve_int_or_percent(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


class FailedPodsBackoff:
    """client-go's flowcontrol.Backoff as the DaemonSet controller uses it for failed daemon pods: per key
    (DaemonSet uid, observed generation, node) a delay that starts at `initial` and doubles on each failed pod
    deleted, up to `maximum`; forgotten after 2 x `maximum` without a failure. A failed pod found while its key
    is in back-off stays until the delay since the last deletion has passed (no hot loop with a node agent
    that rejects the pod)."""

    def __init__(self, initial: float = 1.0, maximum: float = 900.0, clock=time.monotonic):
        self.initial, self.maximum, self.clock = initial, maximum, clock
        self._entries: dict[str, tuple[float, float]] = {}   # key -> (delay, last update)

    @staticmethod
    def key(ds: dict, node: str) -> str:
        return f"{meta_of(ds).get('uid')}/{(ds.get('status') or {}).get('observedGeneration', 0)}/{node}"

    def _live(self, key: str, now: float) -> tuple[float, float] | None:
        entry = self._entries.get(key)
        if entry is not None and now - entry[1] > 2 * self.maximum:
            del self._entries[key]
            return None
        return entry

    def in_backoff(self, key: str, now: float | None = None) -> float:
        """The delay left before a failed pod of `key` may be deleted again (0: not in back-off)."""
        now = self.clock() if now is None else now
        entry = self._live(key, now)
        return max(0.0, entry[0] - (now - entry[1])) if entry else 0.0

    def next(self, key: str, now: float | None = None) -> float:
        """Record a deletion now; the delay the next one must wait."""
        now = self.clock() if now is None else now
        entry = self._live(key, now)
        delay = self.initial if entry is None else min(entry[0] * 2, self.maximum)
        self._entries[key] = (delay, now)
        return delay

    def gc(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for key in list(self._entries):
            self._live(key, now)
