"""`kfab dns` (the built-in cluster DNS server) and `kfab dns-corefile` (a Corefile for CoreDNS instead)."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from kfab.dns import process
from kfab.dns.corefile import render_corefile


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("dns", help="cluster DNS: Service/pod records from the API, other names forwarded")
    p.add_argument("--kubeconfig", required=True, help="credentials that may watch services and endpointslices")
    p.add_argument("--listen", default="0.0.0.0:53",
                   help="ADDR:PORT for UDP and TCP (default 0.0.0.0:53). Behind a Service, give the address the "
                        "Service's endpoint names: UDP replies from a wildcard socket leave from the routing's "
                        "source address, which the DNATing host cannot match to the query")
    p.add_argument("--domain", default="cluster.local", help="cluster domain (default cluster.local)")
    p.add_argument("--upstream", default=None,
                   help="resolver for other names, IP[:PORT] (default: first nameserver of /etc/resolv.conf)")
    p.add_argument("--service", default=None, metavar="NAMESPACE/NAME",
                   help="keep this Service (no selector, at --service-ip, port 53) and an EndpointSlice for this "
                        "server in it while running, e.g. kube-system/kube-dns; needs a --listen address")
    p.add_argument("--service-ip", default=None, help="the Service's ClusterIP (what pods get as nameserver)")
    p.add_argument("--endpoint-name", default=None,
                   help="this server's name in the EndpointSlice <service>-<name> (default: the host name)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_dns)

    c = subparsers.add_parser("dns-corefile", help="print a CoreDNS Corefile serving the same records")
    c.add_argument("--domain", default="cluster.local")
    c.add_argument("--upstream", default="/etc/resolv.conf", help="forward target (default /etc/resolv.conf)")
    c.add_argument("--kubeconfig", default=None, help="kubeconfig for CoreDNS's kubernetes plugin")
    c.add_argument("--port", type=int, default=53)
    c.set_defaults(func=run_corefile)


def parse_address(value: str, default_port: int, what: str) -> tuple[str, int]:
    """'1.2.3.4', '1.2.3.4:53', '[::1]:53' -> (host, port); ValueError naming `what` otherwise."""
    host, port = value, default_port
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, port = value.split(":")
    try:
        ipaddress.ip_address(host)
        port = int(port)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not IP[:PORT]") from None
    return host, port


def resolv_conf_nameserver(path: Path = Path("/etc/resolv.conf"), avoid: str | None = None) -> str | None:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] != avoid:
            return parts[1]
    return None


def run_dns(args) -> int:
    try:
        listen = parse_address(args.listen, 53, "--listen")
        upstream_text = args.upstream or resolv_conf_nameserver(avoid=listen[0])
        upstream = parse_address(upstream_text, 53, "--upstream") if upstream_text else None
        service = _service_args(args, listen)
    except ValueError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    return process.run(args.kubeconfig, args.domain, listen, upstream, service, args.verbose, args.listen)


def _service_args(args, listen: tuple[str, int]) -> dict | None:
    if not args.service:
        if args.service_ip:
            raise ValueError("--service-ip needs --service NAMESPACE/NAME")
        return None
    if args.service.count("/") != 1 or not all(args.service.split("/")):
        raise ValueError(f"--service: {args.service!r} is not NAMESPACE/NAME")
    if not args.service_ip:
        raise ValueError("--service needs --service-ip (the ClusterIP pods ask)")
    try:
        ipaddress.ip_address(args.service_ip)
    except ValueError:
        raise ValueError(f"--service-ip: {args.service_ip!r} is not an IP address") from None
    if ipaddress.ip_address(listen[0]).is_unspecified:
        raise ValueError(f"--service needs --listen at a host address (the slice names it), not {listen[0]}")
    return {"service": args.service, "cluster_ip": args.service_ip,
            "endpoint_name": args.endpoint_name or socket.gethostname()}


def run_corefile(args) -> int:
    sys.stdout.write(render_corefile(args.domain, args.upstream, kubeconfig=args.kubeconfig, port=args.port))
    return 0
