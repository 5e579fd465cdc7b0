"""One Kubernetes container -> the arguments of one Podman container: command/args, env, mounts, limits, user.

Kubernetes' `command` replaces the image's ENTRYPOINT and `args` its CMD; `$(VAR)` references in command,
args and env values expand from the container's env as the kubelet does (`$$` escapes).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Awaitable, Callable

from kfab.node.runtime import LABEL_ATTEMPT, LABEL_CONTAINER, LABEL_INIT, LABEL_NAME, LABEL_NAMESPACE, LABEL_UID
from kfab.objects.meta import meta_of, spec_of

# (kind "ConfigMap"|"Secret", namespace, name) -> the object, or None when absent.
Lookup = Callable[[str, str, str], Awaitable[dict | None]]


class ContainerConfigError(Exception):
    """The container cannot be created as specified (kubelet's CreateContainerConfigError)."""


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _REF.sub(sub, value)


def _data(obj: dict) -> dict[str, str]:
    """A ConfigMap's or Secret's values as text (Secret data is base64)."""
    if obj.get("kind") == "Secret":
        out = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        out.update(obj.get("stringData") or {})
        return out
    return dict(obj.get("data") or {})


def field_value(pod: dict, path: str, pod_ip: str | None, host_ip: str | None) -> str:
    meta, spec = meta_of(pod), spec_of(pod)
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"), "status.podIP": pod_ip,
        "status.hostIP": host_ip,
    }
    if path in simple:
        return simple[path] or ""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    if path in ("metadata.labels", "metadata.annotations"):   # whole maps: downwardAPI volumes only
        # the kubelet's FormatMap: key="value" lines in key order (Go %q quoting), no newline after the last
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={json.dumps(values[k], ensure_ascii=False)}" for k in sorted(values))
    if path in ("status.podIPs", "status.hostIPs"):
        return (pod_ip if path == "status.podIPs" else host_ip) or ""
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


async def resolve_env(pod: dict, container: dict, lookup: Lookup, pod_ip: str | None,
                      host_ip: str | None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The container's environment: `base` (the Services' variables), then envFrom, then env, each later one
    winning; `$(VAR)` in env values expands from what came before."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(base or {})
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if source.get("configMapRef") else "Secret"
        obj = await lookup(kind, namespace, ref["name"])
        if obj is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'{kind.lower()} "{ref["name"]}" not found')
        prefix = source.get("prefix") or ""
        env.update({prefix + k: v for k, v in _data(obj).items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value") or "", env)
            continue
        source = var["valueFrom"]
        if source.get("fieldRef"):
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif source.get("configMapKeyRef") or source.get("secretKeyRef"):
            kind = "ConfigMap" if source.get("configMapKeyRef") else "Secret"
            ref = source.get("configMapKeyRef") or source.get("secretKeyRef")
            obj = await lookup(kind, namespace, ref["name"])
            data = _data(obj) if obj is not None else None
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                what = f'{kind.lower()} "{ref["name"]}"' if data is None else \
                    f'couldn\'t find key {ref["key"]} in {kind} {namespace}/{ref["name"]}'
                raise ContainerConfigError(what if data is not None else f"{what} not found")
            env[name] = data[ref["key"]]
        elif source.get("resourceFieldRef"):
            ref = source["resourceFieldRef"]
            res = ((container.get("resources") or {}).get("limits") or {}).get(ref["resource"].split(".", 1)[-1])
            env[name] = str(res or "0")
    return env


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def memory_bytes(quantity: str | int) -> int:
    q = str(quantity)
    for unit, factor in _UNITS.items():
        if q.endswith(unit):
            return int(float(q[: -len(unit)]) * factor)
    return int(float(q))


def cpu_millis(quantity: str | int) -> int:
    q = str(quantity)
    return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)


def create_args(pod: dict, container: dict, *, podman_pod: str, env: dict[str, str], mounts: list[dict],
                attempt: int, init: bool) -> dict:
    """Keyword arguments of the bindings' containers.create() for one attempt of one container."""
    meta = pod["metadata"]
    name = container["name"]
    kwargs: dict = {
        "name": f"{podman_pod}-{name}-{attempt}",
        "pod": podman_pod,
        "labels": {LABEL_UID: meta["uid"], LABEL_NAMESPACE: meta["namespace"], LABEL_NAME: meta["name"],
                   LABEL_CONTAINER: name, LABEL_ATTEMPT: str(attempt), LABEL_INIT: "true" if init else "false"},
        "environment": env,
        "mounts": mounts,
        "stdin_open": bool(container.get("stdin")),
        "tty": bool(container.get("tty")),
    }
    if container.get("command"):
        kwargs["entrypoint"] = [expand(c, env) for c in container["command"]]
        kwargs["command"] = [expand(a, env) for a in container.get("args") or []]
    elif container.get("args"):
        kwargs["command"] = [expand(a, env) for a in container["args"]]
    if container.get("workingDir"):
        kwargs["working_dir"] = container["workingDir"]
    limits = (container.get("resources") or {}).get("limits") or {}
    if limits.get("memory"):
        kwargs["mem_limit"] = memory_bytes(limits["memory"])
    if limits.get("cpu"):
        kwargs["cpu_period"] = 100000
        kwargs["cpu_quota"] = cpu_millis(limits["cpu"]) * 100
    security = dict(spec_of(pod).get("securityContext") or {})
    security.update(container.get("securityContext") or {})
    if security.get("runAsUser") is not None:
        user = str(security["runAsUser"])
        if security.get("runAsGroup") is not None:
            user += f":{security['runAsGroup']}"
        kwargs["user"] = user
    if security.get("readOnlyRootFilesystem"):
        kwargs["read_only"] = True
    if security.get("privileged"):
        kwargs["privileged"] = True
    caps = security.get("capabilities") or {}
    if caps.get("add"):
        kwargs["cap_add"] = list(caps["add"])
    if caps.get("drop"):
        kwargs["cap_drop"] = list(caps["drop"])
    return kwargs
