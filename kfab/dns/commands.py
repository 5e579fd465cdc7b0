"""`kfab dns` (the built-in cluster DNS server) and `kfab dns-corefile` (a Corefile for CoreDNS instead)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from pathlib import Path


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
    from kfab.client import Client, KubeconfigError
    from kfab.dns.server import DNSServer
    from kfab.dns.watch import WatchedRecords

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        listen = parse_address(args.listen, 53, "--listen")
        upstream_text = args.upstream or resolv_conf_nameserver(avoid=listen[0])
        upstream = parse_address(upstream_text, 53, "--upstream") if upstream_text else None
    except ValueError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    try:
        client = Client.from_kubeconfig(args.kubeconfig, user_agent="kfab-dns")
    except KubeconfigError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2

    async def main() -> int:
        records = WatchedRecords(client, args.domain)
        server = DNSServer(records, upstream)
        try:
            host, port = await server.start(*listen)
        except OSError as e:
            print(f"ERROR: --listen {args.listen}: {e.strerror or e}", file=sys.stderr)
            await client.close()
            return 1
        logging.getLogger("kfab.dns").info("serving %s on %s:%d (UDP, TCP); upstream %s", args.domain, host, port,
                                           "%s:%d" % upstream if upstream else "none")
        task = asyncio.create_task(records.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await server.stop()
            await client.close()
        return 0

    return asyncio.run(main())


def run_corefile(args) -> int:
    from kfab.dns.corefile import render_corefile
    sys.stdout.write(render_corefile(args.domain, args.upstream, kubeconfig=args.kubeconfig, port=args.port))
    return 0
