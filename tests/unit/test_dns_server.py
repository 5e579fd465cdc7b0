"""The DNS server on 127.0.0.1 answering real DNS queries (dnspython as the client, UDP and TCP): cluster
names from its records, other names through an upstream resolver (a second server on loopback)."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from kfab.dns.records import Records
from kfab.dns.server import DNSServer

SERVICES = [{"metadata": {"namespace": "default", "name": "web"},
             "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}},
            {"metadata": {"namespace": "default", "name": "big"},
             "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}}]
SLICES = [{"metadata": {"namespace": "default", "name": "big-x", "labels": {"kubernetes.io/service-name": "big"}},
           "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
           "endpoints": [{"addresses": [f"10.244.{i // 250}.{i % 250 + 1}"], "conditions": {"ready": True}}
                         for i in range(120)]}]


def run(coro):
    return asyncio.run(coro)


async def with_servers(test):
    """A cluster DNS server whose upstream is another server authoritative for `example.test`."""
    upstream_records = Records.build([{"metadata": {"namespace": "ns", "name": "www"},
                                       "spec": {"clusterIP": "192.0.2.7"}}], [], domain="example.test")
    upstream = DNSServer(lambda: upstream_records, None)
    up_addr = await upstream.start("127.0.0.1", 0)
    records = Records.build(SERVICES, SLICES)
    server = DNSServer(lambda: records, up_addr)
    addr = await server.start("127.0.0.1", 0)
    try:
        return await test(addr)
    finally:
        await server.stop()
        await upstream.stop()


async def ask(addr, name, rdtype="A", tcp=False):
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(q, addr[0], port=addr[1], timeout=5)
    return await dns.asyncquery.udp(q, addr[0], port=addr[1], timeout=5, raise_on_truncation=False)


def test_a_service_name_resolves_over_udp_and_tcp():
    async def test(addr):
        for tcp in (False, True):
            r = await ask(addr, "web.default.svc.cluster.local", tcp=tcp)
            assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
            assert [rr.address for rr in r.answer[0]] == ["10.96.0.20"]
    run(with_servers(test))


def test_unknown_cluster_name_is_nxdomain_with_the_zone_soa():
    async def test(addr):
        r = await ask(addr, "missing.default.svc.cluster.local")
        assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
        assert r.authority[0].rdtype == dns.rdatatype.SOA
        r = await ask(addr, "web.default.svc.cluster.local", "AAAA")
        assert r.rcode() == dns.rcode.NOERROR and not r.answer      # exists, no IPv6: NODATA
    run(with_servers(test))


def test_srv_answer_carries_the_target_address():
    async def test(addr):
        r = await ask(addr, "_http._tcp.web.default.svc.cluster.local", "SRV")
        [srv] = r.answer[0]
        assert (srv.port, srv.target.to_text()) == (80, "web.default.svc.cluster.local.")
        assert [rr.address for rr in r.additional[0]] == ["10.96.0.20"]
    run(with_servers(test))


def test_other_names_are_forwarded_upstream():
    async def test(addr):
        r = await ask(addr, "www.ns.svc.example.test")
        assert [rr.address for rr in r.answer[0]] == ["192.0.2.7"]
        r = await ask(addr, "nope.ns.svc.example.test", tcp=True)
        assert r.rcode() == dns.rcode.NXDOMAIN
    run(with_servers(test))


def test_an_unreachable_upstream_is_servfail_not_silence():
    async def test():
        records = Records.build([], [])
        server = DNSServer(lambda: records, ("127.0.0.1", 9))   # discard port: nothing answers DNS there
        addr = await server.start("127.0.0.1", 0)
        try:
            r = await ask(addr, "example.org")
            assert r.rcode() == dns.rcode.SERVFAIL
        finally:
            await server.stop()
    run(test())


def test_a_large_answer_is_truncated_over_udp_and_complete_over_tcp():
    async def test(addr):
        r = await ask(addr, "big.default.svc.cluster.local")
        assert r.flags & dns.flags.TC
        r = await ask(addr, "big.default.svc.cluster.local", tcp=True)
        assert len(r.answer[0]) == 120
    run(with_servers(test))
