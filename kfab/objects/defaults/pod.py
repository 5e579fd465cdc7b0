"""Pod and pod template defaults (SetDefaults_PodSpec, SetDefaults_Container, ... in pkg/apis/core/v1)."""

from __future__ import annotations


def _d(parent: dict, key: str) -> dict:
    """parent[key] as a dict, created when missing (a wrong type is left for validation to report)."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[dict]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, IfNotPresent for a tag or digest (SetDefaults_Container)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: object) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        http.setdefault("scheme", "HTTP")


def _default_container(c: dict, host_network: bool) -> None:
    image = c.get("image")
    if isinstance(image, str) and image and not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(image)
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    resources = _d(c, "resources")
    # A limit without a request means request = limit (SetDefaults_Pod).
    limits = resources.get("limits")
    if isinstance(limits, dict) and limits:
        requests = _d(resources, "requests")
        for name, value in limits.items():
            requests.setdefault(name, value)
    for port in _items(c.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and not port.get("hostPort") and port.get("containerPort"):
            port["hostPort"] = port["containerPort"]
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(key))
    for env in _items(c.get("env")):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env.get("valueFrom"), dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _default_volume(volume: dict) -> None:
    if not any(k != "name" and v is not None for k, v in volume.items()):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", 0o644)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    host_network = spec.get("hostNetwork") is True
    for c in _items(spec.get("initContainers")) + _items(spec.get("containers")):
        _default_container(c, host_network)
    for volume in _items(spec.get("volumes")):
        _default_volume(volume)


def default_pod_template(template: object) -> None:
    if isinstance(template, dict):
        spec = _d(template, "spec")
        default_pod_spec(spec)



def qos_class(spec: dict) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' cpu/memory requests and limits (v1 qos)."""
    containers = _items(spec.get("initContainers")) + _items(spec.get("containers"))
    any_set, guaranteed = False, bool(containers)
    for c in containers:
        resources = c.get("resources") if isinstance(c.get("resources"), dict) else {}
        requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else {}
        limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
        if any(k in requests or k in limits for k in ("cpu", "memory")):
            any_set = True
        if not all(k in limits and requests.get(k, limits[k]) == limits[k] for k in ("cpu", "memory")):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_pod(pod: dict) -> None:
    """Defaults of a Pod created directly: spec defaults plus what the default admission plugins add."""
    spec = _d(pod, "spec")
    default_pod_spec(spec)
    _d(pod, "status").setdefault("qosClass", qos_class(spec))
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec["serviceAccount"] = spec["serviceAccountName"]  # the deprecated alias mirrors it
    if not spec.get("priorityClassName"):
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
