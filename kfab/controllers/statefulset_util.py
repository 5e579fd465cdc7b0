"""StatefulSet identities and revisions, as pure functions: pod and claim names, the pod for an ordinal, the
ControllerRevision of a template. The controller in statefulset.py decides when to use them."""

from __future__ import annotations

import copy
import json
import re

from kfab.machinery.controller import owner_ref
from kfab.controllers.deployment_util import template_hash
from kfab.controllers.podutil import is_ready
from kfab.objects.meta import meta_of, spec_of, status_of

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
HASH_LABEL = "controller.kubernetes.io/hash"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def pod_name(sts: dict, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def ordinal_of(sts: dict, pod: dict) -> int | None:
    """The ordinal in a pod's name when the pod is one of this set's (`<set>-<ordinal>`), else None."""
    m = _ORDINAL.match(pod["metadata"]["name"])
    if not m or m.group(1) != sts["metadata"]["name"]:
        return None
    return int(m.group(2))


def claim_name(template_name: str, sts: dict, ordinal: int) -> str:
    return f"{template_name}-{pod_name(sts, ordinal)}"


def replicas(sts: dict) -> int:
    value = spec_of(sts).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: dict) -> int:
    return int((spec_of(sts).get("ordinals") or {}).get("start") or 0)


def ordered_ready(sts: dict) -> bool:
    return spec_of(sts).get("podManagementPolicy", "OrderedReady") != "Parallel"


def update_strategy(sts: dict) -> str:
    return (spec_of(sts).get("updateStrategy") or {}).get("type") or "RollingUpdate"


def partition(sts: dict) -> int:
    rolling = (spec_of(sts).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(rolling.get("partition") or 0)


def is_running_and_ready(pod: dict) -> bool:
    return status_of(pod).get("phase") == "Running" and is_ready(pod)


def is_terminating(pod: dict) -> bool:
    return bool(meta_of(pod).get("deletionTimestamp"))


def is_failed(pod: dict) -> bool:
    return status_of(pod).get("phase") in ("Failed", "Succeeded")


def is_healthy(pod: dict) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def pod_revision(pod: dict) -> str:
    return (meta_of(pod).get("labels") or {}).get(REVISION_LABEL, "")


# --- revisions -------------------------------------------------------------------------------------

def revision_data(sts: dict) -> dict:
    """What a ControllerRevision of a StatefulSet records: the pod template, as a replace patch (as kube)."""
    template = copy.deepcopy(spec_of(sts).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_hash(data: dict, collision_count: int = 0) -> str:
    return template_hash(data, collision_count or None)


def revision_name(sts: dict, data: dict, collision_count: int = 0) -> str:
    return f"{sts['metadata']['name']}-{revision_hash(data, collision_count)}"


def same_data(a: dict | None, b: dict | None) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def template_of(revision: dict) -> dict:
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def revision_number(revision: dict) -> int:
    return int(revision.get("revision") or 0)


def new_revision(sts: dict, data: dict, number: int, collision_count: int = 0) -> dict:
    labels = dict((spec_of(sts).get("selector") or {}).get("matchLabels") or {})
    labels[HASH_LABEL] = revision_hash(data, collision_count)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": revision_name(sts, data, collision_count), "namespace": sts["metadata"]["namespace"],
                         "labels": labels, "ownerReferences": [owner_ref(sts)]},
            "data": data, "revision": number}


# --- pods and claims -------------------------------------------------------------------------------

def new_claims(sts: dict, ordinal: int) -> list[dict]:
    """The PVCs of an ordinal, from volumeClaimTemplates: `<template>-<set>-<ordinal>`, never owned by the
    set (they outlive its pods and scale-downs: the Retain policy)."""
    selector_labels = (spec_of(sts).get("selector") or {}).get("matchLabels") or {}
    claims = []
    for tpl in spec_of(sts).get("volumeClaimTemplates") or []:
        meta = meta_of(tpl)
        labels = dict(meta.get("labels") or {}, **selector_labels)
        claim_meta = {"name": claim_name(meta["name"], sts, ordinal), "namespace": sts["metadata"]["namespace"],
                      "labels": labels}
        if meta.get("annotations"):
            claim_meta["annotations"] = dict(meta["annotations"])
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": claim_meta,
                       "spec": copy.deepcopy(spec_of(tpl))})
    return claims


def new_pod(sts: dict, template: dict, ordinal: int, revision: str) -> dict:
    """The pod of one ordinal: stable name, hostname and subdomain, its claims mounted as the templates' volumes."""
    meta = copy.deepcopy(meta_of(template))
    name = pod_name(sts, ordinal)
    labels = dict(meta.get("labels") or {}, **{POD_NAME_LABEL: name, REVISION_LABEL: revision,
                                               POD_INDEX_LABEL: str(ordinal)})
    pod_meta = {"name": name, "namespace": sts["metadata"]["namespace"], "labels": labels,
                "ownerReferences": [owner_ref(sts)]}
    if meta.get("annotations"):
        pod_meta["annotations"] = meta["annotations"]
    spec = copy.deepcopy(spec_of(template))
    spec["hostname"] = name
    service_name = spec_of(sts).get("serviceName")
    if service_name:
        spec["subdomain"] = service_name
    claims = {tpl["metadata"]["name"]: claim_name(tpl["metadata"]["name"], sts, ordinal)
              for tpl in spec_of(sts).get("volumeClaimTemplates") or []}
    if claims:
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
        volumes += [{"name": vol, "persistentVolumeClaim": {"claimName": claim}} for vol, claim in claims.items()]
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}
