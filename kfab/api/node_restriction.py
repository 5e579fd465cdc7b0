"""NodeRestriction admission, as upstream's plugin: a node (system:node:<name>) writes only its own objects.

- its own Node: never another's; no labels under node-restriction.kubernetes.io/ nor kubernetes.io/ and k8s.io
  labels outside upstream's allowed list; no change of its taints after creation
- pods: creates only mirror pods bound to itself; deletes and updates status of pods bound to itself only
- leases in kube-node-lease: only its own (named after it). kfab addition: a node agent also keeps one Lease
  per attached RWO volume (kfab.node.storage.attach); those it may write while it is, or becomes, the holder,
  and delete only while it holds them; and the podCIDR claim Lease it holds (kfab.node.registration).

Messages are upstream's, as `<resource> "<name>" is forbidden: <reason>` (admission.NewForbidden).
"""

from __future__ import annotations

from kfab.api.node_authorizer import node_name
from kfab.objects.errors import APIError

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
NODE_LEASE_NAMESPACE = "kube-node-lease"
VOLUME_LEASE_ANNOTATION = "kfab.io/attached-volume"
POD_CIDR_CLAIM_LABEL = "kfab.io/podcidr-claim"
RESTRICTED_PREFIX = "node-restriction.kubernetes.io/"
# Labels under kubernetes.io / k8s.io a kubelet may set on its Node (upstream's kubeletapis.KubeletLabels).
ALLOWED_LABELS = {
    "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
}
ALLOWED_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def admit(req) -> None:
    """Raise 403 when a node's write reaches beyond itself; anything not a node passes untouched."""
    node = node_name(req.user)
    if node is None:
        return
    kind, group = req.resource.kind, req.resource.group
    if (group, kind) == ("", "Node"):
        _node(req, node)
    elif (group, kind) == ("", "Pod"):
        _pod(req, node)
    elif (group, kind) == ("coordination.k8s.io", "Lease"):
        _lease(req, node)


def _forbidden(req, reason: str) -> APIError:
    rt = req.resource
    resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    name = req.name or ((req.obj or {}).get("metadata") or {}).get("name", "")
    return APIError(403, "Forbidden", f'{resource} "{name}" is forbidden: {reason}', name=name,
                    group=rt.group or None, kind=rt.plural)


def _node(req, node: str) -> None:
    name = req.name or ((req.obj or {}).get("metadata") or {}).get("name", "")
    if name != node:
        raise _forbidden(req, f'node "{node}" is not allowed to modify node "{name}"')
    if req.operation == "DELETE" or req.subresource:
        return
    new_labels = ((req.obj or {}).get("metadata") or {}).get("labels") or {}
    if req.operation == "CREATE":
        bad = sorted(k for k in new_labels if _restricted(k))
        if bad:
            raise _forbidden(req, f'node "{node}" is not allowed to set the following labels: {", ".join(bad)}')
        return
    old_labels = ((req.old or {}).get("metadata") or {}).get("labels") or {}
    changed = {k for k in set(new_labels) | set(old_labels) if new_labels.get(k) != old_labels.get(k)}
    bad = sorted(k for k in changed if _restricted(k))
    if bad:
        raise _forbidden(req, f'node "{node}" is not allowed to modify labels: {", ".join(bad)}')
    if ((req.obj or {}).get("spec") or {}).get("taints") != ((req.old or {}).get("spec") or {}).get("taints"):
        raise _forbidden(req, f'node "{node}" is not allowed to modify taints')


def _restricted(label: str) -> bool:
    """Upstream's rule: node-restriction.kubernetes.io/ never; other kubernetes.io / k8s.io labels only listed."""
    prefix, sep, _ = label.partition("/")
    if not sep:
        return False
    if label.startswith(RESTRICTED_PREFIX):
        return True
    if label in ALLOWED_LABELS:
        return False
    if any(prefix == ns or prefix.endswith("." + ns) for ns in ALLOWED_LABEL_NAMESPACES):
        return False
    return prefix in ("kubernetes.io", "k8s.io") or prefix.endswith((".kubernetes.io", ".k8s.io"))


def _pod(req, node: str) -> None:
    pod = req.obj if req.operation == "CREATE" else req.old
    bound_to = ((pod or {}).get("spec") or {}).get("nodeName")
    if req.subresource == "status":
        if bound_to != node:
            raise _forbidden(req, f'node "{node}" can only update pod status for pods with spec.nodeName set to '
                                  "itself")
        return
    if req.subresource:
        raise _forbidden(req, f'unexpected pod subresource "{req.subresource}", only \'status\' and \'eviction\' '
                              "are allowed")
    if req.operation == "CREATE":
        annotations = ((req.obj or {}).get("metadata") or {}).get("annotations") or {}
        if MIRROR_ANNOTATION not in annotations:
            raise _forbidden(req, f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{node}" can only '
                                  "create mirror pods")
        if bound_to != node:
            raise _forbidden(req, f'node "{node}" can only create pods with spec.nodeName set to itself')
    elif req.operation == "DELETE":
        if bound_to != node:
            raise _forbidden(req, f'node "{node}" can only delete pods with spec.nodeName set to itself')
    else:
        raise _forbidden(req, f'unexpected operation "{req.operation}", node "{node}" can only create and delete '
                              "mirror pods")


def _lease(req, node: str) -> None:
    if req.namespace != NODE_LEASE_NAMESPACE:
        raise _forbidden(req, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
    name = req.name or ((req.obj or {}).get("metadata") or {}).get("name", "")
    if name == node:
        return
    lease = req.obj if req.operation != "DELETE" else req.old
    if _volume_lease_of(lease, node) or _pod_cidr_claim_of(lease, node):
        return
    raise _forbidden(req, "can only access node lease with the same name as the requesting node")


def _pod_cidr_claim_of(lease: dict | None, node: str) -> bool:
    """kfab addition: the Lease a node agent claims its podCIDR with (kfab.node.registration), held by it."""
    meta, spec = (lease or {}).get("metadata") or {}, (lease or {}).get("spec") or {}
    return POD_CIDR_CLAIM_LABEL in (meta.get("labels") or {}) and spec.get("holderIdentity") == node


def _volume_lease_of(lease: dict | None, node: str) -> bool:
    meta, spec = (lease or {}).get("metadata") or {}, (lease or {}).get("spec") or {}
    return VOLUME_LEASE_ANNOTATION in (meta.get("annotations") or {}) and spec.get("holderIdentity") == node
