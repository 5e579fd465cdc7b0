"""Generic object metadata and the per-kind rules kube-apiserver's "strategies" apply on create and update.

uid, creationTimestamp, generation, name from generateName; which part of an object the main resource
and the status subresource may change; what a kind's status looks like when it is created. Defaults,
validation and allocation are admission's job (kfab.api.admission), not this module's.
"""

from __future__ import annotations

import datetime
import secrets
import uuid

from kfab.api.decoding import json_type, quoted
from kfab.objects import conversion, jsonwire
from kfab.objects.errors import Cause, bad_request, invalid
from kfab.objects.registry import ResourceType
from kfab.objects.validation import field as field_errors
from kfab.objects.validation.field import invalid_error
from kfab.store.base import KeyValue
from kfab.objects.meta import meta_of, spec_of

# generateName suffix alphabet: no vowels (no accidental words) and no look-alike characters (as k8s).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Kinds whose create starts from this status whatever the client sent (PrepareForCreate in kube-apiserver).
_CREATE_STATUS = {
    ("", "Pod"): {"phase": "Pending"},
    ("", "Namespace"): {"phase": "Active"},
    ("", "Service"): {"loadBalancer": {}},
    ("", "PersistentVolume"): {"phase": "Pending"},
    ("", "PersistentVolumeClaim"): {"phase": "Pending"},
    ("apps", "Deployment"): {},
    ("apps", "ReplicaSet"): {"replicas": 0},
    ("apps", "StatefulSet"): {"replicas": 0, "availableReplicas": 0},
    ("apps", "DaemonSet"): {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                            "numberReady": 0},
    ("policy", "PodDisruptionBudget"): {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                        "expectedPods": 0},
    ("batch", "Job"): {},
    ("batch", "CronJob"): {},
}

# Kinds where PUT of a missing object creates it (AllowCreateOnUpdate in kube-apiserver).
_CREATE_ON_UPDATE = {("", "Endpoints"), ("", "Event"), ("coordination.k8s.io", "Lease"),
                     ("rbac.authorization.k8s.io", "Role"), ("rbac.authorization.k8s.io", "RoleBinding"),
                     ("rbac.authorization.k8s.io", "ClusterRole"),
                     ("rbac.authorization.k8s.io", "ClusterRoleBinding")}

# Kinds with metadata.generation (the ones whose controllers report status.observedGeneration).
_GENERATION_KINDS = {("", "Pod"), ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
                     ("apiextensions.k8s.io", "CustomResourceDefinition"),
                     ("apps", "DaemonSet"), ("policy", "PodDisruptionBudget"),
                     ("batch", "Job"), ("batch", "CronJob")}

# apps/v1 shows a DaemonSet's internal spec.templateGeneration as this annotation; the server owns it.
DAEMONSET_TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"

# Fields the server owns: never taken from a client's body.
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                "resourceVersion", "selfLink")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp_after(seconds: int) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def has_generation(rt: ResourceType) -> bool:
    return (rt.group, rt.kind) in _GENERATION_KINDS or rt.custom is not None


def has_status_subresource(rt: ResourceType) -> bool:
    return "status" in rt.subresources


def allow_create_on_update(rt: ResourceType) -> bool:
    return (rt.group, rt.kind) in _CREATE_ON_UPDATE


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


# --- encoding: the stored bytes never carry resourceVersion; it is the key's mod_revision -------------

def encode(obj: dict) -> bytes:
    obj = conversion.to_stored(obj)  # a kind served in versions of different shapes is stored in one
    meta = meta_of(obj)
    if "resourceVersion" in meta:
        obj = dict(obj, metadata={k: v for k, v in meta.items() if k != "resourceVersion"})
    return jsonwire.dumps(obj)


def decode(kv: KeyValue, rt: ResourceType | None = None) -> dict:
    obj = jsonwire.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    if rt is not None and rt.custom is not None:
        # A CRD's versions with `conversion: None` differ only in apiVersion: shown as the version asked for.
        obj["apiVersion"] = rt.api_version
    elif rt is not None and obj.get("apiVersion") != rt.api_version:
        obj = conversion.to_version(obj, rt.api_version)
    return obj


# --- checks on a client's body -------------------------------------------------------------------

def check_type(rt: ResourceType, obj: object) -> dict:
    """The body is an object of this endpoint's kind; kind/apiVersion filled in when absent, as kube-apiserver
    defaults them from the endpoint."""
    if not isinstance(obj, dict):
        raise bad_request(f"the body of the request must be a JSON or YAML object ({rt.kind}), "
                          f"not {json_type(obj)}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if value is not None and not isinstance(value, str):  # as Go's decoder into TypeMeta says it
            go_type = "bool" if isinstance(value, bool) else json_type(value)
            raise bad_request(f"couldn't get version/kind; json parse error: json: cannot unmarshal {go_type} "
                              f"into Go struct field .{field} of type string")
    if api_version is not None and api_version != rt.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the expected API version "
                          f"({rt.api_version})")
    if kind is not None and kind != rt.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind}) "
                          f"of {rt.plural}")
    meta = obj.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise bad_request(f"metadata must be an object in {rt.kind}")
    meta = dict(meta)
    if isinstance(meta.get("managedFields"), list):
        meta["managedFields"] = [_normal_time(e) for e in meta["managedFields"]]
    return dict(obj, apiVersion=rt.api_version, kind=rt.kind, metadata=meta)


def _normal_time(entry: object) -> object:
    """managedFields[].time as kube-apiserver writes metav1.Time (`...Z`), whatever offset form a client sent,
    so that an unchanged object sent back compares equal."""
    if not isinstance(entry, dict) or not isinstance(entry.get("time"), str):
        return entry
    try:
        when = datetime.datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    except ValueError:
        return entry
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return dict(entry, time=when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def check_namespace(rt: ResourceType, obj: dict, namespace: str | None) -> None:
    meta = obj["metadata"]
    if not rt.namespaced:
        meta.pop("namespace", None)
        return
    body_ns = meta.get("namespace")
    if body_ns and body_ns != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    meta["namespace"] = namespace


# --- create / update ----------------------------------------------------------------------------

def prepare_create(rt: ResourceType, obj: dict, namespace: str | None) -> dict:
    """Fill server-owned metadata on a new object (name from generateName is picked by the caller)."""
    obj = check_type(rt, jsonwire.clone(obj))
    check_namespace(rt, obj, namespace)
    meta = obj["metadata"]
    for key in _SERVER_META:
        meta.pop(key, None)
    if not meta.get("name") and not meta.get("generateName"):
        raise invalid(rt.kind, "", [Cause("metadata.name", "name or generateName is required",
                                          "FieldValueRequired")], rt.group)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    if has_generation(rt):
        meta["generation"] = 1
    start_status = _CREATE_STATUS.get((rt.group, rt.kind)) if rt.custom is None else None
    if start_status is not None:
        obj["status"] = jsonwire.clone(start_status)
    if rt.custom is not None and has_status_subresource(rt):
        obj.pop("status", None)  # a custom resource's status is written through its status subresource only
    if (rt.group, rt.kind) == ("apps", "DaemonSet"):
        meta.setdefault("annotations", {})[DAEMONSET_TEMPLATE_GENERATION] = "1"
    if (rt.group, rt.kind) == ("", "Namespace"):
        # Every namespace carries the "kubernetes" finalizer: the namespace controller empties it before
        # the namespace goes away.
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
    return omit_empty_metadata(obj)


# Go's `omitempty`: kube-apiserver never stores an empty labels map or finalizers list, so after
# `kubectl label x tier-` the labels field is gone rather than `{}`.
_OMIT_EMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences", "managedFields")


def omit_empty_metadata(obj: dict) -> dict:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _OMIT_EMPTY_META:
            if key in meta and meta[key] in ({}, [], None):
                del meta[key]
    return obj


def _spec_part(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_update(rt: ResourceType, new: dict, old: dict) -> dict:
    """The object a PUT (or PATCH) on the main resource stores: server metadata from `old`, status from
    `old` when the kind has a status subresource, generation bumped when anything but metadata/status changed."""
    new = check_type(rt, jsonwire.clone(new))
    meta, old_meta = new["metadata"], old["metadata"]
    if meta.get("name") and meta["name"] != old_meta["name"]:
        raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                          f"({old_meta['name']})")
    if rt.namespaced and meta.get("namespace") and meta["namespace"] != old_meta.get("namespace"):
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    uid = meta.get("uid")
    if uid not in (None, "") and uid != old_meta.get("uid"):
        # As kube-apiserver's ValidateObjectMetaUpdate (an empty uid takes the old one; a changed one is refused;
        # a changed creationTimestamp is silently put back, as its BeforeUpdate does).
        raise invalid_error(rt.kind, rt.group, old_meta["name"],
                            [field_errors.invalid("metadata.uid", uid, "field is immutable")])
    meta["name"] = old_meta["name"]
    if rt.namespaced:
        meta["namespace"] = old_meta.get("namespace")
    else:
        meta.pop("namespace", None)
    for key in _SERVER_META:
        meta.pop(key, None)
        if key in old_meta and key != "resourceVersion":
            meta[key] = old_meta[key]
    if "generateName" in old_meta and "generateName" not in meta:
        meta["generateName"] = old_meta["generateName"]
    if has_status_subresource(rt):
        if "status" in old:
            new["status"] = jsonwire.clone(old["status"])
        else:
            new.pop("status", None)
    if (rt.group, rt.kind) == ("", "Namespace"):
        # spec.finalizers only changes through the finalize subresource
        new["spec"] = dict(new.get("spec") or {}, finalizers=spec_of(old).get("finalizers", []))
    if has_generation(rt) and _spec_part(new) != _spec_part(old):
        meta["generation"] = int(old_meta.get("generation") or 0) + 1
    if (rt.group, rt.kind) == ("apps", "DaemonSet"):
        _next_template_generation(new, old)
    return omit_empty_metadata(new)


def _next_template_generation(new: dict, old: dict) -> None:
    """The DaemonSet strategy's PrepareForUpdate: templateGeneration counts changes of spec.template."""
    try:
        generation = int((old["metadata"].get("annotations") or {}).get(DAEMONSET_TEMPLATE_GENERATION) or 0)
    except ValueError:
        generation = 0
    if spec_of(new).get("template") != spec_of(old).get("template"):
        generation += 1
    if generation:
        new["metadata"].setdefault("annotations", {})[DAEMONSET_TEMPLATE_GENERATION] = str(generation)


def prepare_status_update(rt: ResourceType, new: dict, old: dict) -> dict:
    """The object a PUT/PATCH of the status subresource stores: `old` with only its status replaced."""
    new = check_type(rt, new)
    if new["metadata"].get("name") and new["metadata"]["name"] != old["metadata"]["name"]:
        raise bad_request(f"the name of the object ({new['metadata']['name']}) does not match the name on the "
                          f"URL ({old['metadata']['name']})")
    result = jsonwire.clone(old)
    if "status" in new:
        result["status"] = jsonwire.clone(new["status"])
    else:
        result.pop("status", None)
    return result


def ready_to_vanish(obj: dict) -> bool:
    """A terminating object with no finalizers left (and no graceful pod shutdown pending) is deleted."""
    meta = meta_of(obj)
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if obj.get("kind") == "Namespace" and spec_of(obj).get("finalizers"):
        return False
    return not meta.get("deletionGracePeriodSeconds")


def resource_version_of(obj: dict) -> int | None:
    rv = meta_of(obj).get("resourceVersion")
    if rv in (None, ""):
        return None
    try:
        value = int(rv)
    except (TypeError, ValueError):
        raise bad_request(f"invalid resourceVersion {quoted(rv)}: expected a number") from None
    if value <= 0:
        raise bad_request(f"invalid resourceVersion {quoted(rv)}")
    return value

