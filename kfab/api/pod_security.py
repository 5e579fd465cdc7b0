"""Pod Security admission (upstream's PodSecurity plugin): namespace labels pick a Pod Security Standard.

    pod-security.kubernetes.io/enforce: baseline     # a violating pod is refused (403)
    pod-security.kubernetes.io/enforce-version: v1.30   (default latest)
    pod-security.kubernetes.io/warn: restricted       # the client gets a Warning header (kubectl prints it)
    pod-security.kubernetes.io/audit: restricted      # recorded in the server log

Pods are checked when created; workload objects (Deployments, Jobs, ...) by their pod template, for warn and
audit only, as upstream. Changing a namespace's enforce label warns about the existing pods that would
violate it. A Namespace with an invalid level or version label is refused (422, upstream's words); one
stored before is evaluated as restricted:latest for that mode. The audit log's event of each checked
request carries upstream's annotations: pod-security.kubernetes.io/enforce-policy (the level:version
enforced), audit-violations (what the audit level found) and exempt (user, namespace or runtimeClass).
A PodSecurityConfiguration (pod-security.admission.config.k8s.io/v1) gives the defaults for
unlabelled namespaces and the exemptions (usernames, runtimeClasses, namespaces).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


from kfab.api.config_file import load_kind
from kfab.api.pod_security_checks import LEVELS, describe, parse_version, violations
from kfab.objects.errors import APIError, Cause
from kfab.objects.validation.field import invalid, invalid_error
from kfab.store.base import Store
from kfab.objects.meta import meta_of, spec_of

LABEL_PREFIX = "pod-security.kubernetes.io/"  # also of the audit annotations (enforce-policy, ...), as upstream
MODES = ("enforce", "audit", "warn")
# Workload kinds whose pod template is checked (warn/audit), and where the template sits.
TEMPLATE_PATHS = {("apps", "Deployment"): ("spec", "template"), ("apps", "ReplicaSet"): ("spec", "template"),
                  ("apps", "StatefulSet"): ("spec", "template"), ("apps", "DaemonSet"): ("spec", "template"),
                  ("", "ReplicationController"): ("spec", "template"), ("batch", "Job"): ("spec", "template"),
                  ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template")}
MAX_POD_WARNINGS = 10  # namespace label changes: at most this many pod lines (upstream caps them too)


@dataclass
class PodSecurityConfig:
    defaults: dict[str, str] = field(default_factory=lambda: {m: "privileged" for m in MODES})
    exempt_usernames: set[str] = field(default_factory=set)
    exempt_namespaces: set[str] = field(default_factory=set)
    exempt_runtime_classes: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path) -> "PodSecurityConfig":
        doc = load_kind(path, "PodSecurityConfiguration")
        config = cls()
        for key, value in (doc.get("defaults") or {}).items():
            config.defaults[key] = str(value)
        exemptions = doc.get("exemptions") or {}
        config.exempt_usernames = set(exemptions.get("usernames") or [])
        config.exempt_namespaces = set(exemptions.get("namespaces") or [])
        config.exempt_runtime_classes = set(exemptions.get("runtimeClasses") or [])
        for mode in MODES:
            if config.defaults.get(mode, "privileged") not in LEVELS:
                raise ValueError(f"{path}: defaults.{mode}: must be one of {', '.join(LEVELS)}")
        return config


def label_errors(labels: dict) -> list[Cause]:
    """Invalid pod-security.kubernetes.io/ level and version labels, as upstream's PolicyToEvaluate words them."""
    causes = []
    for mode in MODES:
        key = LABEL_PREFIX + mode
        if key in labels and labels[key] not in LEVELS:
            causes.append(invalid(f"metadata.labels[{key}]", labels[key], f"must be one of {', '.join(LEVELS)}"))
        if f"{key}-version" in labels:
            try:
                parse_version(labels[f"{key}-version"])
            except ValueError as e:
                causes.append(invalid(f"metadata.labels[{key}-version]", labels[f"{key}-version"], str(e)))
    return causes


def policy(labels: dict, defaults: dict[str, str]) -> dict[str, tuple[str, str]]:
    """mode -> (level, version) from a namespace's labels, else the defaults; a label that does not parse
    counts as restricted / latest (upstream: an invalid label must not loosen anything)."""
    out = {}
    for mode in MODES:
        level = labels.get(LABEL_PREFIX + mode) or defaults.get(mode, "privileged")
        if level not in LEVELS:
            level = "restricted"
        version = labels.get(f"{LABEL_PREFIX}{mode}-version") or defaults.get(f"{mode}-version", "latest")
        try:
            parse_version(version)
        except ValueError:
            version = "latest"
        out[mode] = (level, version)
    return out


def _forbidden(rt, name: str, text: str) -> APIError:
    resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
    return APIError(403, "Forbidden", f'{resource} "{name}" is forbidden: {text}', name=name,
                    group=rt.group or None, kind=rt.plural)


class PodSecurityAdmission:
    def __init__(self, store: Store, config: PodSecurityConfig | None = None):
        self.store = store
        self.config = config or PodSecurityConfig()

    async def _namespace_labels(self, namespace: str | None) -> dict:
        if not namespace:
            return {}
        kv = await self.store.get(f"/registry/namespaces/{namespace}")
        return ((json.loads(kv.value).get("metadata") or {}).get("labels") or {}) if kv else {}

    async def admit(self, req, obj: dict) -> list[str]:
        """Warnings to send; raises 403 when a pod violates its namespace's enforce level."""
        rt = req.resource
        if (rt.group, rt.kind) == ("", "Namespace") and req.subresource is None:
            return await self._namespace_change(req, obj)
        if req.operation != "CREATE" or req.subresource is not None:
            return []  # upstream re-checks updates only for fields a pod cannot change anyway
        if (rt.group, rt.kind) == ("", "Pod"):
            meta, spec, is_pod = meta_of(obj), spec_of(obj), True
        elif (rt.group, rt.kind) in TEMPLATE_PATHS:
            template = obj
            for key in TEMPLATE_PATHS[(rt.group, rt.kind)]:
                template = (template or {}).get(key) or {}
            meta, spec, is_pod = meta_of(template), spec_of(template), False
        else:
            return []
        exempt = self._exemption(req, spec)
        if exempt:
            req.audit_annotations[LABEL_PREFIX + "exempt"] = exempt
            return []
        modes = policy(await self._namespace_labels(req.namespace), self.config.defaults)
        name = meta_of(obj).get("name") or req.name
        warnings = []
        level, version = modes["enforce"]
        if is_pod:
            req.audit_annotations[LABEL_PREFIX + "enforce-policy"] = f"{level}:{version}"
            found = violations(level, meta, spec, version)
            if found:
                raise _forbidden(rt, name, f'violates PodSecurity "{level}:{version}": {describe(found)}')
        level, version = modes["warn"]
        found = violations(level, meta, spec, version)
        if found:
            warnings.append(f'would violate PodSecurity "{level}:{version}": {describe(found)}')
        level, version = modes["audit"]
        found = violations(level, meta, spec, version)
        if found:
            req.audit_annotations[LABEL_PREFIX + "audit-violations"] = \
                f'would violate PodSecurity "{level}:{version}": {describe(found)}'
        return warnings

    def _exemption(self, req, spec: dict) -> str | None:
        """Which exemption applies (upstream's annotation values), if any."""
        if getattr(req.user, "name", None) in self.config.exempt_usernames:
            return "user"
        if req.namespace in self.config.exempt_namespaces:
            return "namespace"
        if spec.get("runtimeClassName") in self.config.exempt_runtime_classes:
            return "runtimeClass"
        return None

    async def _namespace_change(self, req, obj: dict) -> list[str]:
        """Invalid labels are refused; a new or stricter enforce label warns about the existing pods it would
        refuse (they keep running)."""
        labels = meta_of(obj).get("labels") or {}
        old_labels = ((req.old or {}).get("metadata") or {}).get("labels") or {}
        causes = label_errors(labels)
        if causes and (req.operation == "CREATE" or label_errors(old_labels) != causes):
            raise invalid_error("Namespace", "", meta_of(obj).get("name") or req.name, causes)
        level, version = policy(labels, self.config.defaults)["enforce"]
        if req.operation != "UPDATE" or level == "privileged" \
                or policy(old_labels, self.config.defaults)["enforce"] == (level, version):
            return []
        namespace = meta_of(obj).get("name") or req.name
        if namespace in self.config.exempt_namespaces:
            return []
        kvs, _ = await self.store.list(f"/registry/pods/{namespace}/")
        by_reasons: dict[str, list[str]] = {}
        for kv in kvs:
            pod = json.loads(kv.value)
            spec = spec_of(pod)
            if spec.get("runtimeClassName") in self.config.exempt_runtime_classes:
                continue
            found = violations(level, meta_of(pod), spec, version)
            if found:
                reasons = ", ".join(dict.fromkeys(reason for reason, _ in found))
                by_reasons.setdefault(reasons, []).append(meta_of(pod).get("name", ""))
        if not by_reasons:
            return []
        warnings = [f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
                    f'"{level}:{version}"']
        for reasons, pods in list(by_reasons.items())[:MAX_POD_WARNINGS]:
            first = sorted(pods)[0]
            others = len(pods) - 1
            who = first if not others else f"{first} (and {others} other pod{'s' if others > 1 else ''})"
            warnings.append(f"{who}: {reasons}")
        return warnings
