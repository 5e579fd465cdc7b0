"""Which LoadBalancer addresses a node contends to announce, and the gratuitous ARP it sends for them."""

import struct

from kfab.machinery.leased_address import gratuitous_arp
from kfab.proxy.announce import lease_name, pool_addresses


def test_only_pool_addresses_are_announced_never_node_addresses():
    nodes = [{"status": {"addresses": [{"type": "InternalIP", "address": "10.79.0.21"}]}}]
    services = [
        {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.79.0.240"}]}}},
        {"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.79.0.21"}]}}},
        {"spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.79.0.241"}]}}},
    ]
    assert pool_addresses(services, nodes) == {"10.79.0.240"}
    assert lease_name("10.79.0.240") == "kfab-lb-10-79-0-240"


def test_gratuitous_arp_is_a_broadcast_request_for_the_address_from_itself():
    frame = gratuitous_arp("52:54:00:12:34:56", "10.79.0.240")
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("525400123456")
    assert struct.unpack("!H", frame[12:14])[0] == 0x0806
    htype, ptype, hlen, plen, oper = struct.unpack("!HHBBH", frame[14:22])
    assert (htype, ptype, hlen, plen, oper) == (1, 0x0800, 6, 4, 1)
    sender_ip, target_ip = frame[28:32], frame[38:42]
    assert sender_ip == target_ip == bytes([10, 79, 0, 240]) and len(frame) == 42
    assert frame[22:28] == bytes.fromhex("525400123456")   # sender hardware address
