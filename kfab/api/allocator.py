"""Service ClusterIP and NodePort allocation, safe with several API servers over one store.

Every allocated value is one key in the store, created with `create()`: the store's KeyExists is the
arbiter, so two API servers (or two concurrent requests) can never hand out the same IP or port.

    /registry/ranges/serviceips/<ip>            {"service": "<namespace>/<name>", "uid": ..., "at": <unix time>}
    /registry/ranges/servicenodeports/<port>

Two phases, because the Service is written after admission: `allocate()` creates the keys the new object
needs and returns an Allocation; after the Service write succeeds, `commit()` releases what the old object
held and the new one does not; if the write fails, `abort()` releases what was created. `release_service()`
frees a deleted Service's values, and `repair()` reclaims keys leaked by a crash between the two phases.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import random
import time
from dataclasses import dataclass, field

from kfab.objects.errors import APIError
from kfab.objects.validation.field import invalid, invalid_error
from kfab.objects.validation.service import externally_accessible
from kfab.store.base import KeyExists, KeyNotFound, RevisionConflict, Store
from kfab.objects.meta import meta_of, spec_of

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
SERVICES_PREFIX = "/registry/services/"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_NODE_PORTS = (30000, 32767)
_RANDOM_TRIES = 32
log = logging.getLogger(__name__)


@dataclass
class Allocation:
    created: list[str] = field(default_factory=list)  # keys this request created (freed on abort)
    release_on_commit: list[str] = field(default_factory=list)  # keys the old object held and the new one drops
    owner: str = ""


def _internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")


def _needs_cluster_ip(spec: dict) -> bool:
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"


def _needs_node_ports(spec: dict) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _ports(spec: dict) -> list[dict]:
    ports = spec.get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def _node_ports(spec: dict) -> set[int]:
    return {p["nodePort"] for p in _ports(spec) if isinstance(p.get("nodePort"), int) and p["nodePort"]}


def carry_over(svc: dict, old: dict) -> None:
    """On update, keep allocated values a client left out (kubectl replace/apply of the original manifest),
    and drop the ones the new type does not use (patchAllocatedValues, dropTypeDependentFields)."""
    spec, old_spec = svc.setdefault("spec", {}), spec_of(old)
    if not isinstance(spec, dict):
        return
    if spec.get("type") == "ExternalName":
        if old_spec.get("type") != "ExternalName":
            for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
                if spec.get(key) == old_spec.get(key):
                    spec.pop(key, None)
    elif old_spec.get("type") != "ExternalName" and old_spec.get("clusterIP"):
        if not spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIP"], spec["clusterIPs"] = old_spec["clusterIP"], list(old_spec.get("clusterIPs") or [])
        for key in ("ipFamilies", "ipFamilyPolicy"):
            if key not in spec and key in old_spec:
                spec[key] = old_spec[key]
    if _needs_node_ports(old_spec) and _needs_node_ports(spec):
        used = _node_ports(old_spec) & _node_ports(spec)
        by_name = {p.get("name", ""): p.get("nodePort") for p in _ports(old_spec)}
        for port in _ports(spec):
            old_port = by_name.get(port.get("name", ""))
            if not port.get("nodePort") and old_port and old_port not in used:
                port["nodePort"] = old_port
    elif _needs_node_ports(old_spec) and not _needs_node_ports(spec):
        old_by_name = {p.get("name", ""): p.get("nodePort") for p in _ports(old_spec)}
        for port in _ports(spec):
            if port.get("nodePort") and old_by_name.get(port.get("name", "")) == port["nodePort"]:
                del port["nodePort"]
    # The rest of dropTypeDependentFields: a field the new type cannot have goes when the client left it as it was.
    was_lb, is_lb = old_spec.get("type") == "LoadBalancer", spec.get("type") == "LoadBalancer"
    same = {key: spec.get(key) == old_spec.get(key) for key in
            ("healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerClass", "externalTrafficPolicy")}
    if _needs_health_check_port(old_spec) and not _needs_health_check_port(spec) and same["healthCheckNodePort"]:
        spec.pop("healthCheckNodePort", None)
    if was_lb and not is_lb:
        for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if same[key]:
                spec.pop(key, None)
        # LB de-provisioning is asynchronous, but the user is not shown that (as kube-apiserver).
        if isinstance(svc.get("status"), dict) and svc["status"].get("loadBalancer"):
            svc["status"]["loadBalancer"] = {}
    if externally_accessible(old_spec) and not externally_accessible(spec) and same["externalTrafficPolicy"]:
        spec.pop("externalTrafficPolicy", None)


def _needs_health_check_port(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


class ServiceAllocator:
    def __init__(self, store: Store, service_cidr: str = DEFAULT_SERVICE_CIDR,
                 node_ports: tuple[int, int] = DEFAULT_NODE_PORTS):
        self.store = store
        self.network = ipaddress.ip_network(service_cidr)
        self.node_ports = node_ports
        size = self.network.num_addresses
        # Dynamic picks prefer the upper part of each range, leaving the lower band to clients that ask
        # for a fixed value such as the DNS service's 10.96.0.10 (as kube-apiserver's allocators do).
        self._ip_offset = min(max(16, size // 16), 256)
        self._port_offset = min(max(16, (node_ports[1] - node_ports[0] + 1) // 32), 128)

    # --- the range --------------------------------------------------------------------------------
    def kubernetes_service_ip(self) -> str:
        """The first address: kept for the `kubernetes` Service, never handed out dynamically."""
        return str(self.network.network_address + 1)

    def kubernetes_service(self, secure_port: int) -> dict:
        """The `default/kubernetes` Service kube-apiserver keeps for in-cluster clients (create it through
        admission; its Endpoints name the API servers, as no selector fills them)."""
        ip = self.kubernetes_service_ip()
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]}}

    def _ip_valid(self, ip: ipaddress._BaseAddress) -> bool:
        return ip in self.network and ip not in (self.network.network_address, self.network.broadcast_address)

    def _ip_candidates(self) -> tuple[range, range]:
        last = self.network.num_addresses - 1  # broadcast excluded
        return range(max(self._ip_offset, 2), last), range(2, min(self._ip_offset, last))

    def _port_candidates(self) -> tuple[range, range]:
        lo, hi = self.node_ports
        return range(lo + self._port_offset, hi + 1), range(lo, lo + self._port_offset)

    # --- keys -------------------------------------------------------------------------------------
    @staticmethod
    def _owner(svc: dict) -> str:
        meta = meta_of(svc)
        return f"{meta.get('namespace', '')}/{meta.get('name', '')}"

    @staticmethod
    def _value(svc: dict) -> bytes:
        meta = meta_of(svc)
        return json.dumps({"service": ServiceAllocator._owner(svc), "uid": meta.get("uid"),
                           "at": time.time()}).encode()

    async def _claim(self, key: str, svc: dict, dry_run: bool) -> bool:
        if dry_run:
            return await self.store.get(key) is None
        try:
            await self.store.create(key, self._value(svc))
            return True
        except KeyExists:
            return False

    async def _release(self, key: str, owner: str) -> None:
        """Delete an allocation key if `owner` still holds it (a repair may have handed it on)."""
        kv = await self.store.get(key)
        if kv is None:
            return
        try:
            holder = json.loads(kv.value).get("service")
        except ValueError:
            holder = None
        if holder not in (owner, None):
            return
        try:
            await self.store.delete(key, expected_mod_revision=kv.mod_revision)
        except (KeyNotFound, RevisionConflict):
            pass

    async def _claim_dynamic(self, prefix: str, bands: tuple[range, range], to_key, svc: dict,
                             dry_run: bool) -> str | None:
        upper, lower = bands
        for _ in range(_RANDOM_TRIES if len(upper) else 0):
            key = prefix + to_key(random.choice(upper))
            if await self._claim(key, svc, dry_run):
                return key
        # Crowded: look at what is taken and try the free values, upper band first.
        taken = {kv.key for kv in (await self.store.list(prefix))[0]}
        for band in (upper, lower):
            free = [k for k in (prefix + to_key(i) for i in band) if k not in taken]
            random.shuffle(free)
            for key in free:
                if await self._claim(key, svc, dry_run):
                    return key
        return None

    def _ip_key(self, offset: int) -> str:
        return str(self.network.network_address + offset)

    # --- phases -------------------------------------------------------------------------------------
    async def allocate(self, svc: dict, old: dict | None, dry_run: bool = False) -> Allocation:
        """Fill spec.clusterIP(s) and nodePorts of svc (defaults applied, validated); 422/500 on failure,
        with nothing left allocated."""
        alloc = Allocation(owner=self._owner(svc))
        try:
            await self._allocate_ip(svc, old, alloc, dry_run)
            await self._allocate_node_ports(svc, old, alloc, dry_run)
        except BaseException:
            await self.abort(alloc)
            raise
        if dry_run:
            alloc.release_on_commit.clear()  # nothing is written, so the old object keeps what it holds
        return alloc

    async def commit(self, alloc: Allocation) -> None:
        for key in alloc.release_on_commit:
            await self._release(key, alloc.owner)
        alloc.release_on_commit.clear()
        alloc.created.clear()

    async def abort(self, alloc: Allocation) -> None:
        for key in alloc.created:
            await self._release(key, alloc.owner)
        alloc.created.clear()
        alloc.release_on_commit.clear()

    async def release_service(self, svc: dict) -> None:
        """Free what a deleted Service held."""
        spec = spec_of(svc)
        owner = self._owner(svc)
        if _needs_cluster_ip(spec) and spec.get("clusterIP"):
            await self._release(IP_PREFIX + spec["clusterIP"], owner)
        for port in _node_ports(spec):
            await self._release(PORT_PREFIX + str(port), owner)

    async def _allocate_ip(self, svc: dict, old: dict | None, alloc: Allocation, dry_run: bool) -> None:
        spec = svc["spec"]
        old_spec = (old or {}).get("spec") or {}
        old_ip = old_spec.get("clusterIP") if old and _needs_cluster_ip(old_spec) else None
        if not _needs_cluster_ip(spec):
            if old_ip:
                alloc.release_on_commit.append(IP_PREFIX + old_ip)
            return
        requested = spec.get("clusterIP")
        if old_ip and requested == old_ip:
            return
        if old_ip:
            alloc.release_on_commit.append(IP_PREFIX + old_ip)
        name = meta_of(svc).get("name", "")
        if requested:
            ip = ipaddress.ip_address(requested)  # validation has checked the syntax
            if not self._ip_valid(ip):
                raise invalid_error("Service", "", name, [invalid(
                    "spec.clusterIPs", [requested], f"failed to allocate IP {requested}: the provided IP "
                    f"({requested}) is not in the valid range. The range of valid IPs is {self.network}")])
            key = IP_PREFIX + str(ip)
            if not await self._claim(key, svc, dry_run):
                raise invalid_error("Service", "", name, [invalid(
                    "spec.clusterIPs", [requested],
                    f"failed to allocate IP {requested}: provided IP is already allocated")])
        else:
            key = await self._claim_dynamic(IP_PREFIX, self._ip_candidates(), self._ip_key, svc, dry_run)
            if key is None:
                raise _internal("failed to allocate a serviceIP: range is full")
            spec["clusterIP"] = key[len(IP_PREFIX):]
        spec["clusterIPs"] = [spec["clusterIP"]]
        if not dry_run:
            alloc.created.append(key)

    async def _allocate_node_ports(self, svc: dict, old: dict | None, alloc: Allocation, dry_run: bool) -> None:
        spec = svc["spec"]
        old_spec = (old or {}).get("spec") or {}
        held = _node_ports(old_spec) if old and _needs_node_ports(old_spec) else set()
        wanted = _node_ports(spec) if _needs_node_ports(spec) else set()
        for port in held - wanted:
            alloc.release_on_commit.append(PORT_PREFIX + str(port))
        if not _needs_node_ports(spec):
            return
        name = meta_of(svc).get("name", "")
        lo, hi = self.node_ports
        claimed: set[int] = set()
        for i, port in enumerate(_ports(spec)):
            number = port.get("nodePort")
            path = f"spec.ports[{i}].nodePort"
            if number:
                if number in held or number in claimed:
                    continue
                if not lo <= number <= hi:
                    raise invalid_error("Service", "", name, [invalid(
                        path, number, f"provided port is not in the valid range. The range of valid ports is "
                        f"{lo}-{hi}")])
                key = PORT_PREFIX + str(number)
                if not await self._claim(key, svc, dry_run):
                    raise invalid_error("Service", "", name, [invalid(path, number,
                                                                      "provided port is already allocated")])
            else:
                key = await self._claim_dynamic(PORT_PREFIX, self._port_candidates(), str, svc, dry_run)
                if key is None:
                    raise _internal("failed to allocate a nodePort: range is full")
                port["nodePort"] = int(key[len(PORT_PREFIX):])
            claimed.add(port["nodePort"])
            if not dry_run:
                alloc.created.append(key)

    # --- repair -----------------------------------------------------------------------------------
    async def repair(self, grace_seconds: float = 120.0) -> tuple[int, int]:
        """Reconcile keys with stored Services: free keys no Service uses (older than the grace period, so
        an in-flight create is never robbed) and record values Services use without a key.
        Returns (released, recorded)."""
        services, _ = await self.store.list(SERVICES_PREFIX)
        in_use: dict[str, dict] = {}
        for kv in services:
            svc = json.loads(kv.value)
            spec = spec_of(svc)
            if _needs_cluster_ip(spec) and spec.get("clusterIP"):
                in_use[IP_PREFIX + spec["clusterIP"]] = svc
            if _needs_node_ports(spec):
                for port in _node_ports(spec):
                    in_use[PORT_PREFIX + str(port)] = svc
        released = recorded = 0
        now = time.time()
        for prefix in (IP_PREFIX, PORT_PREFIX):
            for kv in (await self.store.list(prefix))[0]:
                if kv.key in in_use:
                    continue
                try:
                    at = float(json.loads(kv.value).get("at", 0))
                except (ValueError, TypeError, AttributeError):
                    at = 0.0
                if now - at < grace_seconds:
                    continue
                try:
                    await self.store.delete(kv.key, expected_mod_revision=kv.mod_revision)
                    released += 1
                except (KeyNotFound, RevisionConflict):
                    pass
        for key, svc in in_use.items():
            try:
                await self.store.create(key, self._value(svc))
                recorded += 1
            except KeyExists:
                pass
        return released, recorded

    async def repair_forever(self, interval: float = 180.0, grace_seconds: float = 120.0) -> None:
        """Run repair() now and then every `interval` seconds until cancelled (kube-apiserver runs its range
        repair loops every 3 minutes). Safe on several API servers at once."""
        while True:
            try:
                released, recorded = await self.repair(grace_seconds)
                if released or recorded:
                    log.info("service ranges repaired: %d leaked values released, %d missing recorded",
                             released, recorded)
            except asyncio.CancelledError:
                raise
            except Exception:  # a store outage must not end the loop; the next round tries again
                log.exception("service range repair failed")
            await asyncio.sleep(interval)
