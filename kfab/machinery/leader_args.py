"""The leader-election flags every control-plane component takes, with kube-controller-manager's names."""

from __future__ import annotations


def add_leader_election_args(parser) -> None:
    parser.add_argument("--leader-elect", action="store_true", help="act only while holding the leader Lease")
    parser.add_argument("--leader-elect-lease-duration", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-renew-deadline", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-retry-period", type=float, default=2.0, metavar="SECONDS")
    parser.add_argument("--leader-elect-identity", default="", metavar="ID",
                        help="this candidate's name in the Lease and in its Events (default: hostname_<uuid>)")
