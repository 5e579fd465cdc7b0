"""Service ClusterIPs and NodePorts: never handed out twice, conflicts rejected, freed when no longer used."""

import asyncio
import copy
import ipaddress
import json

import pytest

from kfab.objects.errors import APIError
from kfab.api.admission import AdmissionChain
from kfab.api.allocator import IP_PREFIX, PORT_PREFIX
from tests.unit.admission_helpers import create_request, open_chain, run, update_request


def service(name, **spec):
    body = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


async def create(chain, obj, **kwargs):
    """admit + commit, as the API core does around a successful store write."""
    req = create_request(copy.deepcopy(obj), **kwargs)
    async with chain.admitted(req) as (stored, _):
        return stored


async def allocation_keys(store):
    return [kv.key for kv in (await store.list("/registry/ranges/"))[0]]


def test_200_concurrent_creates_get_distinct_ips_and_node_ports(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            cluster = [service(f"svc-{i}") for i in range(100)]
            node_port = [service(f"np-{i}", type="NodePort") for i in range(100)]
            created = await asyncio.gather(*(create(chain, s) for s in cluster + node_port))
            return created, await allocation_keys(store)
        finally:
            await store.close()

    created, keys = run(go())
    ips = [s["spec"]["clusterIP"] for s in created]
    ports = [s["spec"]["ports"][0]["nodePort"] for s in created[100:]]
    assert len(set(ips)) == 200 and len(set(ports)) == 100
    network = ipaddress.ip_network("10.96.0.0/12")
    for s in created:
        ip = ipaddress.ip_address(s["spec"]["clusterIP"])
        assert ip in network and ip != network.network_address + 1  # .1 is the kubernetes Service's
        assert s["spec"]["clusterIPs"] == [s["spec"]["clusterIP"]]
    assert all(30000 <= p <= 32767 for p in ports)
    assert sorted(keys) == sorted([IP_PREFIX + ip for ip in ips] + [PORT_PREFIX + str(p) for p in ports])


def test_two_api_servers_over_one_store_never_share_a_value(tmp_path):
    async def go():
        store, first = await open_chain(tmp_path, node_ports=(30000, 30199))
        second = AdmissionChain(store, node_ports=(30000, 30199))
        try:
            # 200 NodePorts from a range of 200: every single port must go to exactly one Service.
            created = await asyncio.gather(*(create(first if i % 2 else second, service(f"s-{i}", type="NodePort"))
                                             for i in range(200)))
            with pytest.raises(APIError) as full:
                await create(first, service("one-too-many", type="NodePort"))
            return created, full.value, await allocation_keys(store)
        finally:
            await store.close()

    created, full, keys = run(go())
    ports = sorted(s["spec"]["ports"][0]["nodePort"] for s in created)
    assert ports == list(range(30000, 30200))
    assert (full.code, full.message) == (500, "Internal error occurred: failed to allocate a nodePort: range is full")
    assert len(keys) == 400  # 200 IPs + 200 ports; the rejected Service's IP was given back


def test_requested_ip_and_port_conflicts(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            dns = await create(chain, service("kube-dns", clusterIP="10.96.0.10"))
            errors = []
            for obj in (service("clash", clusterIP="10.96.0.10"),
                        service("outside", clusterIP="192.168.0.10"),
                        service("np", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])):
                try:
                    await create(chain, obj)
                except APIError as error:
                    errors.append(error)
            for obj in (service("np2", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]),
                        service("low", type="NodePort", ports=[{"port": 80, "nodePort": 80}])):
                with pytest.raises(APIError) as caught:
                    await create(chain, obj)
                errors.append(caught.value)
            return dns, errors, await allocation_keys(store)
        finally:
            await store.close()

    dns, errors, keys = run(go())
    assert dns["spec"]["clusterIPs"] == ["10.96.0.10"]
    assert [e.code for e in errors] == [422, 422, 422, 422]
    assert errors[0].message == ('Service "clash" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.10"]: '
                                 "failed to allocate IP 10.96.0.10: provided IP is already allocated")
    assert errors[1].causes[0].message.endswith("the provided IP (192.168.0.10) is not in the valid range. "
                                                "The range of valid IPs is 10.96.0.0/12")
    assert (errors[2].causes[0].field, errors[2].causes[0].message) == (
        "spec.ports[0].nodePort", "Invalid value: 30080: provided port is already allocated")
    assert errors[3].causes[0].message == ("Invalid value: 80: provided port is not in the valid range. "
                                           "The range of valid ports is 30000-32767")
    # Only kube-dns's IP and np's IP + port are held: the rejected Services' dynamic IPs were released.
    assert len(keys) == 3 and PORT_PREFIX + "30080" in keys


def test_delete_failed_write_and_dry_run_leave_nothing_allocated(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            svc = await create(chain, service("web", type="NodePort"))
            await chain.after_delete(create_request(copy.deepcopy(svc)).resource, svc)
            after_delete = await allocation_keys(store)
            # The same IP can be asked for again once it is free.
            again = await create(chain, service("web2", clusterIP=svc["spec"]["clusterIP"]))
            await chain.after_delete(create_request(copy.deepcopy(again)).resource, again)
            req = create_request(service("failed-write"))
            with pytest.raises(RuntimeError):
                async with chain.admitted(req):
                    raise RuntimeError("store write failed")
            after_abort = await allocation_keys(store)
            dry, _ = await chain.admit(create_request(service("dry", type="NodePort"), dry_run=True))
            after_dry = await allocation_keys(store)
            # A dry-run type change keeps the stored Service's port.
            held = await create(chain, service("held", type="NodePort"))
            req = update_request(service("held") | {"metadata": held["metadata"]}, held, dry_run=True)
            async with chain.admitted(req) as (preview, _):
                assert "nodePort" not in preview["spec"]["ports"][0]
            still_held = await allocation_keys(store)
            return after_delete, after_abort, dry, after_dry, held, still_held
        finally:
            await store.close()

    after_delete, after_abort, dry, after_dry, held, still_held = run(go())
    assert after_delete == [] and after_abort == [] and after_dry == []
    assert PORT_PREFIX + str(held["spec"]["ports"][0]["nodePort"]) in still_held
    assert dry["spec"]["clusterIP"] and dry["spec"]["ports"][0]["nodePort"]  # shown, but not held


def test_updates_keep_values_and_type_changes_release_them(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            old = await create(chain, service("web", type="NodePort"))
            # kubectl replace of the original manifest: no clusterIP, no nodePort in the body.
            req = update_request(service("web", type="NodePort") | {"metadata": old["metadata"]}, old)
            async with chain.admitted(req) as (same, _):
                pass
            req = update_request(service("web") | {"metadata": old["metadata"]}, same)
            async with chain.admitted(req) as (cluster_ip, _):
                pass
            after_clusterip = await allocation_keys(store)
            req = update_request(service("web", type="ExternalName", externalName="db.example.com", ports=[])
                                 | {"metadata": old["metadata"]}, cluster_ip)
            async with chain.admitted(req) as (external, _):
                pass
            after_external = await allocation_keys(store)
            changed = copy.deepcopy(cluster_ip)
            changed["spec"]["clusterIP"] = changed["spec"]["clusterIPs"][0] = "10.96.0.99"
            with pytest.raises(APIError) as caught:
                await chain.admit(update_request(changed, cluster_ip))
            return old, same, cluster_ip, external, after_clusterip, after_external, caught.value
        finally:
            await store.close()

    old, same, cluster_ip, external, after_clusterip, after_external, immutable = run(go())
    assert same["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert same["spec"]["ports"][0]["nodePort"] == old["spec"]["ports"][0]["nodePort"]
    assert cluster_ip["spec"]["clusterIP"] == old["spec"]["clusterIP"]
    assert "nodePort" not in cluster_ip["spec"]["ports"][0]
    assert after_clusterip == [IP_PREFIX + old["spec"]["clusterIP"]]
    assert "clusterIP" not in external["spec"] and after_external == []
    assert immutable.causes[0].field == "spec.clusterIPs[0]"
    assert immutable.causes[0].message == 'Invalid value: ["10.96.0.99"]: may not change once set'


def test_headless_and_external_name_services_hold_nothing(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            headless = await create(chain, service("nginx", clusterIP="None"))
            external = await create(chain, service("db", type="ExternalName", externalName="db.example.com", ports=[]))
            return headless, external, await allocation_keys(store)
        finally:
            await store.close()

    headless, external, keys = run(go())
    assert headless["spec"]["clusterIPs"] == ["None"] and keys == []
    assert "clusterIP" not in external["spec"]


def test_small_range_fills_up_then_frees(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path, service_cidr="10.0.0.0/29")
        try:
            # /29: .1-.6 usable, .1 kept for the kubernetes Service: 5 dynamic addresses.
            made = [await create(chain, service(f"s{i}")) for i in range(5)]
            with pytest.raises(APIError) as full:
                await create(chain, service("s5"))
            await chain.after_delete(create_request(copy.deepcopy(made[0])).resource, made[0])
            again = await create(chain, service("s6"))
            kubernetes = await create(chain, service("kubernetes", clusterIP=chain.allocator.kubernetes_service_ip()))
            return made, full.value, again, kubernetes
        finally:
            await store.close()

    made, full, again, kubernetes = run(go())
    assert sorted(s["spec"]["clusterIP"] for s in made) == [f"10.0.0.{i}" for i in range(2, 7)]
    assert full.message == "Internal error occurred: failed to allocate a serviceIP: range is full"
    assert again["spec"]["clusterIP"] == made[0]["spec"]["clusterIP"]
    assert kubernetes["spec"]["clusterIP"] == "10.0.0.1"


def test_repair_frees_leaked_keys_and_records_missing_ones(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            svc = await create(chain, service("web"))
            # A Service stored without its key (e.g. restored from a backup) and a key whose Service never got
            # written (the API server died between allocation and the write).
            await store.create("/registry/services/default/web", json.dumps(svc).encode())
            await store.delete(IP_PREFIX + svc["spec"]["clusterIP"])
            await store.create(IP_PREFIX + "10.96.5.5", json.dumps({"service": "default/ghost", "at": 0}).encode())
            await store.create(IP_PREFIX + "10.96.5.6", json.dumps({"service": "default/young",
                                                                    "at": 9e18}).encode())
            counts = await chain.allocator.repair(grace_seconds=60)
            return svc, counts, await allocation_keys(store)
        finally:
            await store.close()

    svc, counts, keys = run(go())
    assert counts == (1, 1)
    assert sorted(keys) == sorted([IP_PREFIX + svc["spec"]["clusterIP"], IP_PREFIX + "10.96.5.6"])


def test_kubernetes_service_gets_the_first_address(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            return await create(chain, chain.allocator.kubernetes_service(6443))
        finally:
            await store.close()

    svc = run(go())
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]


def test_repair_loop_runs_until_cancelled(tmp_path):
    async def go():
        store, chain = await open_chain(tmp_path)
        try:
            await store.create(IP_PREFIX + "10.96.7.7", json.dumps({"service": "default/ghost", "at": 0}).encode())
            task = asyncio.create_task(chain.allocator.repair_forever(interval=3600))
            deadline = asyncio.get_running_loop().time() + 10
            while await allocation_keys(store) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await allocation_keys(store)
        finally:
            await store.close()

    assert run(go()) == []
