"""Table columns for networking.k8s.io/v1 kinds, as kube-apiserver's printers (printIngress,
printIngressClass, printNetworkPolicy in pkg/printers/internalversion/printers.go) print them."""

from __future__ import annotations

from datetime import datetime

from kfab.objects.cells import age_column, age_of, column, describe, format_selector, name_column, name_of
from kfab.objects.meta import spec_of, status_of

_NET = "io.k8s.api.networking.v1."

INGRESS_COLUMNS = [
    name_column(),
    column("Class", description="The name of the IngressClass resource that should be used for ingress"),
    column("Hosts", description="Hosts that incoming requests are matched against before the ingress rule"),
    column("Address", description="Address is a list containing ingress points for the load-balancer"),
    column("Ports", description="Ports of TLS configurations that open"),
    age_column(),
]


def _hosts(rules: list[dict]) -> str:
    """formatHosts: the first three hosts, then `+ N more...`; `*` when no rule names a host."""
    listed = [r["host"] for r in rules[:3] if r.get("host")]
    if not listed:
        return "*"
    more = len(rules) - 3
    return ",".join(listed) + (f" + {more} more..." if more > 0 else "")


def load_balancer_addresses(status: dict) -> str:
    ingress = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname"))


def ingress_row(obj: dict, now: datetime) -> list:
    spec = spec_of(obj)
    return [name_of(obj), spec.get("ingressClassName") or "<none>", _hosts(spec.get("rules") or []),
            load_balancer_addresses(status_of(obj)), "80, 443" if spec.get("tls") else "80",
            age_of(obj, now)]


INGRESSCLASS_COLUMNS = [
    name_column(),
    column("Controller", description="Controller that is responsible for handling this class"),
    column("Parameters", description="A reference to a resource with additional parameters"),
    age_column(),
]


def ingressclass_row(obj: dict, now: datetime) -> list:
    spec = spec_of(obj)
    params, shown = spec.get("parameters"), "<none>"
    if params:
        shown = params.get("kind", "") + (f".{params['apiGroup']}" if params.get("apiGroup") else "")
        shown += "/" + params.get("name", "")
    return [name_of(obj), spec.get("controller", ""), shown, age_of(obj, now)]


NETWORKPOLICY_COLUMNS = [
    name_column(),
    column("Pod-Selector", description=describe(_NET + "NetworkPolicySpec", "podSelector")),
    age_column(),
]


def networkpolicy_row(obj: dict, now: datetime) -> list:
    return [name_of(obj), format_selector(spec_of(obj).get("podSelector")), age_of(obj, now)]


PRINTERS = {
    "Ingress": (INGRESS_COLUMNS, ingress_row),
    "IngressClass": (INGRESSCLASS_COLUMNS, ingressclass_row),
    "NetworkPolicy": (NETWORKPOLICY_COLUMNS, networkpolicy_row),
}
