"""`kfab dns --service NS/NAME --service-ip IP`: the DNS server puts itself behind its Service.

Like kube-apiserver keeps the `kubernetes` Service and its endpoints, each `kfab dns` ensures the Service
(no selector, the fixed ClusterIP pods get as their nameserver, port 53 UDP+TCP) and its own EndpointSlice
`<service>-<endpoint name>` listing the address it listens on. A clean stop removes the slice, so the proxies
stop sending queries to a host that is going down; the other DNS hosts' slices keep the Service answering.
"""

from __future__ import annotations

import logging

from kfab.client import APIStatusError, Client, rt_of
from kfab.objects.meta import spec_of

SERVICE = rt_of("Service")
ENDPOINT_SLICE = rt_of("EndpointSlice", "discovery.k8s.io/v1")
MANAGED_BY = "kfab-dns"
log = logging.getLogger("kfab.dns")


def service_object(namespace: str, name: str, cluster_ip: str, target_port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"k8s-app": name, "kubernetes.io/name": "CoreDNS"}},
            "spec": {"clusterIP": cluster_ip,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": target_port},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": target_port}]}}


def slice_object(namespace: str, service: str, endpoint_name: str, address: str, port: int) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-{endpoint_name}", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service,
                                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY}},
            "addressType": "IPv4",
            "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                      {"name": "dns-tcp", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True,
                                                                   "terminating": False}}]}


async def ensure_service(client: Client, namespace: str, name: str, cluster_ip: str, target_port: int) -> None:
    """Create the Service if it is missing; an existing one is left as it is (an operator may have tuned it),
    but a ClusterIP other than ours is reported: pods would ask an address nobody serves."""
    try:
        current = await client.get(SERVICE, namespace, name)
    except APIStatusError as e:
        if not e.not_found:
            raise
        try:
            await client.create(SERVICE, service_object(namespace, name, cluster_ip, target_port))
            log.info("created Service %s/%s at %s", namespace, name, cluster_ip)
        except APIStatusError as e2:
            if not e2.already_exists:   # another DNS host made it meanwhile
                raise
        return
    if spec_of(current).get("clusterIP") != cluster_ip:
        log.warning("Service %s/%s has clusterIP %s, not %s: pods are told to ask %s", namespace, name,
                    current["spec"].get("clusterIP"), cluster_ip, cluster_ip)


async def ensure_slice(client: Client, desired: dict) -> None:
    meta = desired["metadata"]
    try:
        current = await client.get(ENDPOINT_SLICE, meta["namespace"], meta["name"])
    except APIStatusError as e:
        if not e.not_found:
            raise
        await client.create(ENDPOINT_SLICE, desired)
        return
    if all(current.get(k) == desired[k] for k in ("addressType", "ports", "endpoints")) and \
            (current["metadata"].get("labels") or {}) == meta["labels"]:
        return
    await client.update(ENDPOINT_SLICE, {**desired, "metadata": {**meta, "resourceVersion":
                                                                  current["metadata"]["resourceVersion"]}})


async def register(client: Client, service: str, cluster_ip: str, endpoint_name: str, address: str,
                   port: int) -> dict:
    """Ensure the Service and this server's slice; returns the slice (for `unregister`)."""
    namespace, name = service.split("/")
    await ensure_service(client, namespace, name, cluster_ip, port)
    desired = slice_object(namespace, name, endpoint_name, address, port)
    await ensure_slice(client, desired)
    log.info("serving Service %s/%s (%s) as EndpointSlice %s", namespace, name, cluster_ip,
             desired["metadata"]["name"])
    return desired


async def unregister(client: Client, slice_: dict) -> None:
    meta = slice_["metadata"]
    try:
        await client.delete(ENDPOINT_SLICE, meta["namespace"], meta["name"])
    except APIStatusError as e:
        if not e.not_found:
            raise
