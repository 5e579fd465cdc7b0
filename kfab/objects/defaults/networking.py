"""Defaults of networking.k8s.io/v1 kinds (pkg/apis/networking/v1/defaults.go)."""

from __future__ import annotations

from kfab.objects.defaults.pod import _d, _items


def default_network_policy(policy: dict) -> None:
    spec = _d(policy, "spec")
    for direction in ("ingress", "egress"):
        for rule in _items(spec.get(direction)):
            for port in _items(rule.get("ports")):
                port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        # Any policy that does not say implies at least "Ingress"; egress rules imply "Egress" too.
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def default_ingress_class(ingress_class: dict) -> None:
    params = _d(ingress_class, "spec").get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"
