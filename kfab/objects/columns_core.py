"""Table columns for core/v1, storage, coordination, discovery and RBAC kinds, following kube-apiserver's
printers (kubernetes/pkg/printers/internalversion/printers.go)."""

from __future__ import annotations

from datetime import datetime

from kfab.objects.cells import age_column, age_of, column, describe, format_labels, name_column, name_of, since
from kfab.objects.meta import meta_of, spec_of, status_of

_CORE = "io.k8s.api.core.v1."


def _spec(obj: dict) -> dict:
    return spec_of(obj)


def _status(obj: dict) -> dict:
    return status_of(obj)


def _with_more(items: list[str], limit: int = 3, empty: str = "<unset>") -> str:
    """listWithMoreString: the first three, then `+ N more...`."""
    shown = ",".join(items[:limit])
    if len(items) > limit:
        return f"{shown} + {len(items) - limit} more..."
    return shown or empty


# --- Services and endpoints ---------------------------------------------------------------------------------

SERVICE_COLUMNS = [
    name_column(),
    column("Type", description=describe(_CORE + "ServiceSpec", "type")),
    column("Cluster-IP", description=describe(_CORE + "ServiceSpec", "clusterIP")),
    column("External-IP", description=describe(_CORE + "ServiceSpec", "externalIPs")),
    column("Port(s)", description=describe(_CORE + "ServiceSpec", "ports")),
    age_column(),
    column("Selector", priority=1, description=describe(_CORE + "ServiceSpec", "selector")),
]


def _external_ip(svc: dict) -> str:
    spec = _spec(svc)
    kind, external = spec.get("type") or "ClusterIP", spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        ingress = ((_status(svc).get("loadBalancer") or {}).get("ingress")) or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        return ",".join(lb + external) or "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def service_row(svc: dict, now: datetime) -> list:
    spec = _spec(svc)
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = []
    for p in spec.get("ports") or []:
        protocol = p.get("protocol", "TCP")
        node_port = f":{p['nodePort']}" if p.get("nodePort") else ""
        ports.append(f"{p.get('port')}{node_port}/{protocol}")
    return [name_of(svc), spec.get("type") or "ClusterIP", cluster_ips[0] if cluster_ips else "<none>",
            _external_ip(svc), ",".join(ports) or "<none>", age_of(svc, now), format_labels(spec.get("selector"))]


ENDPOINTS_COLUMNS = [name_column(), column("Endpoints", description=describe(_CORE + "Endpoints", "subsets")),
                     age_column()]


def endpoints_row(obj: dict, now: datetime) -> list:
    """formatEndpoints: ip:port for every port of every subset, the first three then `+ N more...`."""
    subsets = obj.get("subsets") or []
    if not subsets:
        return [name_of(obj), "<none>", age_of(obj, now)]
    found: list[str] = []
    for subset in subsets:
        ips = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            found.extend(ips)
        for port in ports:
            found.extend(f"[{ip}]:{port.get('port')}" if ":" in ip else f"{ip}:{port.get('port')}" for ip in ips)
    return [name_of(obj), _with_more(found, empty=""), age_of(obj, now)]


ENDPOINTSLICE_COLUMNS = [
    name_column(),
    column("AddressType", description=describe("io.k8s.api.discovery.v1.EndpointSlice", "addressType")),
    column("Ports", description=describe("io.k8s.api.discovery.v1.EndpointSlice", "ports")),
    column("Endpoints", description=describe("io.k8s.api.discovery.v1.EndpointSlice", "endpoints")),
    age_column(),
]


def endpointslice_row(obj: dict, now: datetime) -> list:
    ports = [str(p["port"]) if p.get("port") is not None else (p.get("name") or "*") for p in obj.get("ports") or []]
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [name_of(obj), obj.get("addressType", ""), _with_more(ports), _with_more(addresses), age_of(obj, now)]


# --- Config and identity -------------------------------------------------------------------------------------

CONFIGMAP_COLUMNS = [name_column(), column("Data", description=describe(_CORE + "ConfigMap", "data")), age_column()]
SECRET_COLUMNS = [name_column(), column("Type", description=describe(_CORE + "Secret", "type")),
                  column("Data", description=describe(_CORE + "Secret", "data")), age_column()]
SERVICEACCOUNT_COLUMNS = [name_column(), column("Secrets", description=describe(_CORE + "ServiceAccount", "secrets")),
                          age_column()]
NAMESPACE_COLUMNS = [name_column(), column("Status", description="The status of the namespace"), age_column()]


def configmap_row(obj: dict, now: datetime) -> list:
    return [name_of(obj), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), age_of(obj, now)]


def secret_row(obj: dict, now: datetime) -> list:
    return [name_of(obj), obj.get("type") or "Opaque", len(obj.get("data") or {}), age_of(obj, now)]


def serviceaccount_row(obj: dict, now: datetime) -> list:
    return [name_of(obj), len(obj.get("secrets") or []), age_of(obj, now)]


def namespace_row(obj: dict, now: datetime) -> list:
    # kube-apiserver sets status.phase on create; show what it would have set when a store lacks it.
    phase = _status(obj).get("phase") or ("Terminating" if meta_of(obj).get("deletionTimestamp")
                                          else "Active")
    return [name_of(obj), phase, age_of(obj, now)]


# --- Nodes and events ------------------------------------------------------------------------------------------

NODE_COLUMNS = [
    name_column(),
    column("Status", description="The status of the node"),
    column("Roles", description="The roles of the node"),
    age_column(),
    column("Version", description=describe(_CORE + "NodeSystemInfo", "kubeletVersion")),
    column("Internal-IP", priority=1, description=describe(_CORE + "NodeStatus", "addresses")),
    column("External-IP", priority=1, description=describe(_CORE + "NodeStatus", "addresses")),
    column("OS-Image", priority=1, description=describe(_CORE + "NodeSystemInfo", "osImage")),
    column("Kernel-Version", priority=1, description=describe(_CORE + "NodeSystemInfo", "kernelVersion")),
    column("Container-Runtime", priority=1, description=describe(_CORE + "NodeSystemInfo", "containerRuntimeVersion")),
]


def node_row(node: dict, now: datetime) -> list:
    status, info = _status(node), _status(node).get("nodeInfo") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    states = ["Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")]
    if _spec(node).get("unschedulable"):
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in (meta_of(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return next((a.get("address", "") for a in addresses if a.get("type") == kind), "<none>")

    return [name_of(node), ",".join(states), ",".join(sorted(roles)) or "<none>", age_of(node, now),
            info.get("kubeletVersion", ""), address("InternalIP"), address("ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


EVENT_COLUMNS = [
    column("Last Seen", description=describe(_CORE + "Event", "lastTimestamp")),
    column("Type", description=describe(_CORE + "Event", "type")),
    column("Reason", description=describe(_CORE + "Event", "reason")),
    column("Object", description=describe(_CORE + "Event", "involvedObject")),
    column("Subobject", priority=1, description=describe(_CORE + "ObjectReference", "fieldPath")),
    column("Source", priority=1, description=describe(_CORE + "Event", "source")),
    column("Message", description=describe(_CORE + "Event", "message")),
    column("First Seen", priority=1, description=describe(_CORE + "Event", "firstTimestamp")),
    column("Count", priority=1, description=describe(_CORE + "Event", "count")),
    column("Name", priority=1, format_="name", description=name_column()["description"]),
]


def event_row(event: dict, now: datetime) -> list:
    first = since(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = since(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 1  # singleton events from events.k8s.io carry no count
    if event.get("series"):
        last = since(event["series"].get("lastObservedTime"), now)
        count = event["series"].get("count", count)
    involved = event.get("involvedObject") or {}
    target = involved.get("kind", "").lower()
    if involved.get("name"):
        target = f"{target}/{involved['name']}"
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    host = source.get("host") or event.get("reportingInstance") or ""
    return [last, event.get("type", ""), event.get("reason", ""), target, involved.get("fieldPath", ""),
            f"{component}, {host}" if host else component, (event.get("message") or "").strip(), first, count,
            name_of(event)]


# --- Storage ------------------------------------------------------------------------------------------------

def _access_modes(modes: list[str] | None) -> str:
    """GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order."""
    modes = modes or []
    short = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
             ("ReadWriteOncePod", "RWOP"))
    return ",".join(abbrev for mode, abbrev in short if mode in modes)


def _storage_class(obj: dict) -> str:
    annotations = meta_of(obj).get("annotations") or {}
    return annotations.get("volume.beta.kubernetes.io/storage-class") or _spec(obj).get("storageClassName", "")


PV_COLUMNS = [
    name_column(),
    column("Capacity", description=describe(_CORE + "PersistentVolumeSpec", "capacity")),
    column("Access Modes", description=describe(_CORE + "PersistentVolumeSpec", "accessModes")),
    column("Reclaim Policy", description=describe(_CORE + "PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
    column("Status", description=describe(_CORE + "PersistentVolumeStatus", "phase")),
    column("Claim", description=describe(_CORE + "PersistentVolumeSpec", "claimRef")),
    column("StorageClass", description="StorageClass of the pv"),
    column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
    column("Reason", description=describe(_CORE + "PersistentVolumeStatus", "reason")),
    age_column(),
    column("VolumeMode", priority=1, description=describe(_CORE + "PersistentVolumeSpec", "volumeMode")),
]


def pv_row(pv: dict, now: datetime) -> list:
    spec, status = _spec(pv), _status(pv)
    claim = spec.get("claimRef")
    phase = "Terminating" if meta_of(pv).get("deletionTimestamp") else status.get("phase", "")
    return [name_of(pv), str((spec.get("capacity") or {}).get("storage", "0")), _access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), phase,
            f"{claim.get('namespace', '')}/{claim.get('name', '')}" if claim else "", _storage_class(pv),
            spec.get("volumeAttributesClassName") or "<unset>", status.get("reason", ""), age_of(pv, now),
            spec.get("volumeMode") or "<unset>"]


PVC_COLUMNS = [
    name_column(),
    column("Status", description=describe(_CORE + "PersistentVolumeClaimStatus", "phase")),
    column("Volume", description=describe(_CORE + "PersistentVolumeClaimSpec", "volumeName")),
    column("Capacity", description=describe(_CORE + "PersistentVolumeClaimStatus", "capacity")),
    column("Access Modes", description=describe(_CORE + "PersistentVolumeClaimStatus", "accessModes")),
    column("StorageClass", description="StorageClass of the pvc"),
    column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    age_column(),
    column("VolumeMode", priority=1, description=describe(_CORE + "PersistentVolumeClaimSpec", "volumeMode")),
]


def pvc_row(pvc: dict, now: datetime) -> list:
    spec, status = _spec(pvc), _status(pvc)
    phase = "Terminating" if meta_of(pvc).get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):  # kubectl shows capacity and modes only once the claim is bound
        capacity = str((status.get("capacity") or {}).get("storage", "0"))
        modes = _access_modes(status.get("accessModes"))
    return [name_of(pvc), phase, spec.get("volumeName", ""), capacity, modes, _storage_class(pvc),
            spec.get("volumeAttributesClassName") or "<unset>", age_of(pvc, now), spec.get("volumeMode") or "<unset>"]


_SC = "io.k8s.api.storage.v1.StorageClass"
STORAGECLASS_COLUMNS = [
    name_column(),
    column("Provisioner", description=describe(_SC, "provisioner")),
    column("ReclaimPolicy", description=describe(_SC, "reclaimPolicy")),
    column("VolumeBindingMode", description=describe(_SC, "volumeBindingMode")),
    column("AllowVolumeExpansion", description=describe(_SC, "allowVolumeExpansion")),
    age_column(),
]


def storageclass_row(sc: dict, now: datetime) -> list:
    annotations = meta_of(sc).get("annotations") or {}
    default = "true" in (annotations.get("storageclass.kubernetes.io/is-default-class"),
                         annotations.get("storageclass.beta.kubernetes.io/is-default-class"))
    return [name_of(sc) + (" (default)" if default else ""), sc.get("provisioner", ""),
            sc.get("reclaimPolicy") or "Delete", sc.get("volumeBindingMode") or "Immediate",
            bool(sc.get("allowVolumeExpansion")), age_of(sc, now)]


# --- Coordination and RBAC ----------------------------------------------------------------------------------

LEASE_COLUMNS = [name_column(),
                 column("Holder", description=describe("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")),
                 age_column()]


def lease_row(lease: dict, now: datetime) -> list:
    return [name_of(lease), _spec(lease).get("holderIdentity") or "", age_of(lease, now)]


def _binding_columns(kind: str) -> list[dict]:
    return [name_column(),
            column("Role", description=describe(f"io.k8s.api.rbac.v1.{kind}", "roleRef")),
            age_column(),
            column("Users", priority=1, description=f"Users in the {kind[0].lower()}{kind[1:]}"),
            column("Groups", priority=1, description=f"Groups in the {kind[0].lower()}{kind[1:]}"),
            column("ServiceAccounts", priority=1, description=f"ServiceAccounts in the {kind[0].lower()}{kind[1:]}")]


def binding_row(binding: dict, now: datetime) -> list:
    ref = binding.get("roleRef") or {}
    subjects = binding.get("subjects") or []
    users = [s.get("name", "") for s in subjects if s.get("kind") == "User"]
    groups = [s.get("name", "") for s in subjects if s.get("kind") == "Group"]
    accounts = [f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects if s.get("kind") == "ServiceAccount"]
    return [name_of(binding), f"{ref.get('kind', '')}/{ref.get('name', '')}", age_of(binding, now),
            ", ".join(users), ", ".join(groups), ", ".join(accounts)]


PRINTERS = {
    "Service": (SERVICE_COLUMNS, service_row),
    "Endpoints": (ENDPOINTS_COLUMNS, endpoints_row),
    "EndpointSlice": (ENDPOINTSLICE_COLUMNS, endpointslice_row),
    "ConfigMap": (CONFIGMAP_COLUMNS, configmap_row),
    "Secret": (SECRET_COLUMNS, secret_row),
    "ServiceAccount": (SERVICEACCOUNT_COLUMNS, serviceaccount_row),
    "Namespace": (NAMESPACE_COLUMNS, namespace_row),
    "Node": (NODE_COLUMNS, node_row),
    "Event": (EVENT_COLUMNS, event_row),
    "PersistentVolume": (PV_COLUMNS, pv_row),
    "PersistentVolumeClaim": (PVC_COLUMNS, pvc_row),
    "StorageClass": (STORAGECLASS_COLUMNS, storageclass_row),
    "Lease": (LEASE_COLUMNS, lease_row),
    "RoleBinding": (_binding_columns("RoleBinding"), binding_row),
    "ClusterRoleBinding": (_binding_columns("ClusterRoleBinding"), binding_row),
}
