"""`kfab ingress`: the built-in ingress controller of one worker."""

from __future__ import annotations

from kfab.ingress import process


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("ingress", help="the ingress controller: route HTTP(S) by Ingress to pods")
    p.add_argument("--kubeconfig", required=True, help="credentials (user system:kfab-ingress)")
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: every address)")
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--https-port", type=int, default=443)
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=lambda args: process.run(args.kubeconfig, args.bind, args.http_port, args.https_port,
                                                 args.verbose))
