"""The DNS server of `kfab dns`: dnspython's wire format over asyncio UDP and TCP.

Names in the cluster domain are answered from `Records` (authoritative); every other name is forwarded to the
upstream resolver as the client sent it, and its answer returned unchanged (with the client's query id).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Callable

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kfab.dns.records import TTL, Records

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = 3.0


def _soa(records: Records) -> dns.rrset.RRset:
    zone = records.domain
    return dns.rrset.from_text(zone, TTL, "IN", "SOA",
                               f"ns.dns.{zone} hostmaster.{zone} 1 7200 1800 86400 {TTL}")


def answer_cluster(query: dns.message.Message, records: Records) -> dns.message.Message:
    """The authoritative answer for a question in the cluster domain."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    response.flags |= dns.flags.RA
    question = query.question[0]
    qname, qtype = question.name, question.rdtype
    entry = records.lookup(qname.to_text())
    if entry is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(_soa(records))
        return response
    if entry.cname and qtype != dns.rdatatype.CNAME:
        response.answer.append(dns.rrset.from_text(qname, TTL, "IN", "CNAME", entry.cname))
        return response   # the client's resolver follows the CNAME out of the cluster domain
    if qtype in (dns.rdatatype.A, dns.rdatatype.ANY) and entry.a:
        response.answer.append(dns.rrset.from_text_list(qname, TTL, "IN", "A", entry.a))
    if qtype == dns.rdatatype.CNAME and entry.cname:
        response.answer.append(dns.rrset.from_text(qname, TTL, "IN", "CNAME", entry.cname))
    if qtype in (dns.rdatatype.SRV, dns.rdatatype.ANY) and entry.srv:
        weight = max(1, 100 // len(entry.srv))
        response.answer.append(dns.rrset.from_text_list(
            qname, TTL, "IN", "SRV", [f"0 {weight} {s.port} {s.target}" for s in entry.srv]))
        for target in sorted({s.target for s in entry.srv}):
            found = records.lookup(target)
            if found is not None and found.a:
                response.additional.append(dns.rrset.from_text_list(target, TTL, "IN", "A", found.a))
    if not response.answer:
        response.authority.append(_soa(records))
    return response


class DNSServer:
    """`records()` returns the current Records; `upstream` is (ip, port) or None (then REFUSED outside)."""

    def __init__(self, records: Callable[[], Records], upstream: tuple[str, int] | None):
        self.records = records
        self.upstream = upstream
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def handle(self, wire: bytes, via_tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return self._formerr(wire)
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR)
            return response.to_wire()
        records = self.records()
        if records.in_domain(query.question[0].name.to_text()):
            return self._to_wire(answer_cluster(query, records), query, via_tcp)
        return await self.forward(query, wire, via_tcp)

    async def forward(self, query: dns.message.Message, wire: bytes, via_tcp: bool) -> bytes:
        if self.upstream is None:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.REFUSED)
            return response.to_wire()
        host, port = self.upstream
        try:
            if via_tcp:
                reply = await dns.asyncquery.tcp(query, host, timeout=UPSTREAM_TIMEOUT, port=port)
            else:
                reply = await dns.asyncquery.udp(query, host, timeout=UPSTREAM_TIMEOUT, port=port,
                                                 ignore_trailing=True, raise_on_truncation=False)
            return reply.to_wire(max_size=65535)
        except (dns.exception.DNSException, OSError) as e:
            log.info("upstream %s:%s failed for %s: %s", host, port, query.question[0].name, e)
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()

    @staticmethod
    def _formerr(wire: bytes) -> bytes | None:
        if len(wire) < 12:
            return None
        qid = struct.unpack("!H", wire[:2])[0]
        return struct.pack("!HHHHHH", qid, 0x8000 | dns.rcode.FORMERR, 0, 0, 0, 0)

    @staticmethod
    def _to_wire(response: dns.message.Message, query: dns.message.Message, via_tcp: bool) -> bytes:
        limit = 65535 if via_tcp else max(512, query.payload if query.edns >= 0 else 512)
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            # RFC 1035: over UDP, say "truncated" and let the client retry over TCP.
            short = dns.message.make_response(query)
            short.flags |= dns.flags.TC | dns.flags.AA
            return short.to_wire()

    # --- transports ---------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        server = self

        class UDP(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                async def reply():
                    out = await server.handle(data, via_tcp=False)
                    if out is not None:
                        self.transport.sendto(out, addr)
                loop.create_task(reply())

        for attempt in range(20):
            self._udp, _ = await loop.create_datagram_endpoint(UDP, local_addr=(host, port))
            bound = self._udp.get_extra_info("sockname")
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, host, bound[1])
                return bound[0], bound[1]
            except OSError:
                self._udp.close()
                # Port 0 picked a UDP port whose TCP twin is taken: pick again. A fixed port is the caller's.
                if port != 0 or attempt == 19:
                    raise
        raise AssertionError("unreachable")

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                out = await self.handle(await reader.readexactly(size), via_tcp=True)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
