"""`kfab server`, `kfab apiserver`, `kfab controller-manager` and `kfab scheduler`: parse the arguments, call
kfab.controlplane.server."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from pathlib import Path

from kfab.api.audit import AuditConfig, Policy
from kfab.api.inflight import InFlightLimits
from kfab.api.pod_security import PodSecurityConfig
from kfab.api.server import ServerConfig
from kfab.api.toleration_admission import UPSTREAM_SECONDS, DefaultTolerationSeconds
from kfab.controllers.manager import select
from kfab.controllers.node_lifecycle import GRACE_PERIOD
from kfab.client import KubeconfigError
from kfab.controlplane import server, vip
from kfab.controlplane.encryption_keys import rotate_key
from kfab.machinery.leader import LeaderElectionConfig
from kfab.machinery.leader_args import add_leader_election_args
from kfab.pki.encryption import CONFIG_FILE as ENCRYPTION_CONFIG_FILE
from kfab.pki.encryption import EncryptionConfigError
from kfab.store import open_store
from kfab.store.base import StoreError


def _common(p) -> None:
    p.add_argument("--data-dir", required=True, type=Path,
                   help="where the PKI (pki/) and admin.kubeconfig live (and the SQLite state for `kfab server`)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port (default 6443; 0 picks a free one)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--token-auth-file", type=Path,
                   help="bearer tokens, kube-apiserver CSV format: token,user,uid,\"group1,group2\"")
    p.add_argument("--tls-san", action="append", default=[],
                   help="extra DNS name or IP for the serving certificate; repeatable")
    p.add_argument("--advertise-address", metavar="IP",
                   help="the address in-cluster clients reach this API server at (the `kubernetes` Service's "
                        "endpoint); default: --bind, or this host's outgoing address when binding all")
    p.add_argument("--compaction-interval", type=float, default=300.0, metavar="SECONDS",
                   help="every SECONDS, forget store history older than the previous interval (default 300)")
    p.add_argument("--metric-resolution", type=float, default=15.0, metavar="SECONDS",
                   help="scrape the node agents' resource metrics (kubectl top, autoscaling) every SECONDS "
                        "(default 15, as k3s's metrics-server)")
    p.add_argument("--encryption-provider-config", type=Path, metavar="FILE",
                   help="EncryptionConfiguration for data at rest (default DATA_DIR/pki/encryption-config.yaml, "
                        "made with a fresh AES-GCM key for Secrets when missing)")
    p.add_argument("--pod-security-config", type=Path, metavar="FILE",
                   help="PodSecurityConfiguration: default levels for unlabelled namespaces and exemptions "
                        "(usernames, runtimeClasses, namespaces)")
    p.add_argument("--audit-log-path", type=Path, metavar="FILE",
                   help="write an audit log (audit.k8s.io/v1 Event JSON lines) to FILE")
    p.add_argument("--audit-policy-file", type=Path, metavar="FILE",
                   help="audit.k8s.io/v1 Policy: the level of each request (default: --audit-level for all)")
    p.add_argument("--audit-level", default="Metadata", choices=("None", "Metadata", "Request", "RequestResponse"),
                   help="without --audit-policy-file, the level of every request (default Metadata)")
    p.add_argument("--audit-log-maxsize", type=int, default=100, metavar="MB",
                   help="rotate the audit log at this size (default 100)")
    p.add_argument("--audit-log-maxbackup", type=int, default=10, metavar="N",
                   help="old audit log files kept (default 10)")
    p.add_argument("--max-requests-inflight", type=int, default=400, metavar="N",
                   help="read-only requests served at once before 429 (0: no limit; default 400; one client "
                        "gets at most half)")
    p.add_argument("--max-mutating-requests-inflight", type=int, default=200, metavar="N",
                   help="mutating requests served at once before 429 (0: no limit; default 200)")
    p.add_argument("--default-not-ready-toleration-seconds", type=int, default=UPSTREAM_SECONDS, metavar="SECONDS",
                   help="new pods tolerate a NotReady node this long before they are evicted (default 300, as "
                        "kube-apiserver; kfab up sets control_plane_default_not_ready_toleration_seconds)")
    p.add_argument("--default-unreachable-toleration-seconds", type=int, default=UPSTREAM_SECONDS,
                   metavar="SECONDS",
                   help="new pods tolerate an unreachable node this long before they are evicted (default 300, as "
                        "kube-apiserver; kfab up sets control_plane_default_unreachable_toleration_seconds)")
    p.add_argument("-v", "--verbose", action="store_true", help="log each component's progress")


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "server", help="run the control plane on this machine (API server over SQLite in DATA_DIR)",
        description="Run the control plane on one machine: the Kubernetes-compatible API server over a SQLite "
                    "store in DATA_DIR, TLS from DATA_DIR/pki, an admin kubeconfig in DATA_DIR/admin.kubeconfig, "
                    "and the controller-manager and scheduler in the same process. Stops cleanly on SIGTERM.")
    _common(p)
    p.add_argument("--disable-controllers", action="store_true",
                   help="do not run the controller-manager in this process (run `kfab controller-manager` instead)")
    p.set_defaults(func=server_command)

    p = subparsers.add_parser(
        "rotate-encryption-key", help="new key for Secrets at rest (--data-dir: kfab server stopped; -i: a cluster)",
        description="Rotate the key that encrypts Secrets at rest for `kfab server --data-dir DATA_DIR`: a new "
                    "key is added first (it encrypts from now on), every Secret is rewritten with it, then the old "
                    "key is dropped from DATA_DIR/pki/encryption-config.yaml. The server must be stopped (the "
                    "SQLite store is one process's); start it again afterwards. With -i INVENTORY instead: the same "
                    "for a cluster kfab up installed, API servers restarted one at a time (kfab.ops.encryption).")
    p.add_argument("--data-dir", type=Path, help="the data directory of `kfab server` (or -i INVENTORY: kfab.ops)")
    p.set_defaults(func=rotate_encryption_key_command)

    p = subparsers.add_parser(
        "apiserver", help="run the API server alone over a store URL (sqlite:///, etcd:// or etcd+https://)",
        description="Run the API server over the state store a URL names: sqlite:///abs/path/state.db, or "
                    "etcd://host:port[,host:port...] so that several API servers share one etcd cluster, or "
                    "etcd+https://host:port[,...]?cacert=CA&cert=CRT&key=KEY for etcd over TLS with a client "
                    "certificate.")
    p.add_argument("--store", required=True, help="sqlite:///abs/path/state.db, etcd://host:port[,host:port...] "
                                                  "or etcd+https://host:port[,...]?cacert=CA&cert=CRT&key=KEY")
    _common(p)
    p.set_defaults(func=apiserver_command)

    p = subparsers.add_parser(
        "controller-manager", help="run the controllers (Deployment, ReplicaSet, GC, Namespace, ...) against an API",
        description="Run the controllers as a client of the API server the kubeconfig names. With --leader-elect, "
                    "several controller-managers can run and only the holder of the Lease "
                    "kube-system/kfab-controller-manager acts.")
    p.add_argument("--kubeconfig", required=True, type=Path)
    add_leader_election_args(p)
    p.add_argument("--node-monitor-grace-period", type=float, default=GRACE_PERIOD, metavar="SECONDS",
                   help="a node whose Lease is not renewed for this long becomes Unknown and tainted unreachable; "
                        "its pods are evicted when their toleration of that taint runs out (default 20; "
                        "kfab up sets control_plane_node_monitor_grace_period)")
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0, metavar="SECONDS",
                   help="look at every HorizontalPodAutoscaler this often (default 15)")
    p.add_argument("--controllers", default="*",
                   help="comma-separated: '*' all, 'name' enable, '-name' disable (default '*')")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=controller_manager_command)

    p = subparsers.add_parser(
        "scheduler", help="run the scheduler (assigns pending pods to nodes) against an API server",
        description="Watch pods with no node whose schedulerName is ours, pick a node (filters: Ready, cordon, "
                    "taints, nodeSelector/affinity, resources, host ports; scores: least allocated, spread) and "
                    "bind them. With --leader-elect only the holder of the Lease kube-system/kfab-scheduler acts.")
    p.add_argument("--kubeconfig", required=True, type=Path)
    add_leader_election_args(p)
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="schedule the pods whose spec.schedulerName is this (default: default-scheduler)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=scheduler_command)

    p = subparsers.add_parser(
        "vip", help="hold the API's virtual IP while this host's API server holds the Lease (as kube-vip)",
        description="Contend for the Lease kube-system/kfab-control-plane-vip through the API server the "
                    "kubeconfig names (this host's own); while holding it, put ADDRESS on the interface that "
                    "carries --own-address and announce it with gratuitous ARP. Run one on every control-plane "
                    "host; needs CAP_NET_ADMIN and CAP_NET_RAW.")
    p.add_argument("address", help="the virtual IP (IPv4, on the hosts' network)")
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--own-address", required=True, metavar="IP",
                   help="this host's address on that network: the VIP goes on the interface holding it")
    p.add_argument("--identity", default="", help="this candidate's name in the Lease (default: hostname)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=vip_command)


def _server_config(args, store_url: str) -> ServerConfig:
    pod_security = PodSecurityConfig.load(args.pod_security_config) if args.pod_security_config else None
    audit = None
    if args.audit_log_path:
        policy = Policy.load(args.audit_policy_file) if args.audit_policy_file else Policy.everything_at(
            args.audit_level)
        audit = AuditConfig(args.audit_log_path, policy, args.audit_log_maxsize, args.audit_log_maxbackup)
    return ServerConfig(store_url=store_url, data_dir=args.data_dir.resolve(), bind=args.bind, port=args.port,
                        tokens_file=args.token_auth_file, tls_sans=args.tls_san,
                        compaction_interval=args.compaction_interval, advertise_address=args.advertise_address,
                        metric_resolution=args.metric_resolution,
                        inflight=InFlightLimits(args.max_requests_inflight, args.max_mutating_requests_inflight),
                        encryption_config=args.encryption_provider_config, pod_security=pod_security,
                        audit=audit, default_tolerations=DefaultTolerationSeconds(
                            args.default_not_ready_toleration_seconds, args.default_unreachable_toleration_seconds))


def _election(args, **lease) -> LeaderElectionConfig | None:
    """The --leader-elect-* flags as a LeaderElectionConfig (None without --leader-elect); ValueError when bad."""
    if not args.leader_elect:
        return None
    return LeaderElectionConfig(**lease, lease_duration=args.leader_elect_lease_duration,
                                renew_deadline=args.leader_elect_renew_deadline,
                                retry_period=args.leader_elect_retry_period, identity=args.leader_elect_identity)


def server_command(args) -> int:
    try:
        config = _server_config(args, f"sqlite:///{args.data_dir.resolve() / 'state.db'}")
    except ValueError as e:
        print(f"kfab server: {e}", file=sys.stderr)
        return 2
    return server.run_server(config, args.verbose, controllers=not args.disable_controllers)


def apiserver_command(args) -> int:
    try:
        config = _server_config(args, args.store)
    except ValueError as e:
        print(f"kfab apiserver: {e}", file=sys.stderr)
        return 2
    return server.run_apiserver(config, args.verbose)


def controller_manager_command(args) -> int:
    names = [n.strip() for n in args.controllers.split(",") if n.strip()]
    try:
        select(names)
        election = _election(args)
    except ValueError as e:
        print(f"kfab controller-manager: {e}", file=sys.stderr)
        return 2
    options = {"node-monitor-grace-period": args.node_monitor_grace_period,
               "horizontal-pod-autoscaler-sync-period": args.horizontal_pod_autoscaler_sync_period}
    return server.run_controller_manager(args.kubeconfig, election, names, options, args.verbose)


def scheduler_command(args) -> int:
    try:
        election = _election(args, name="kfab-scheduler")
    except ValueError as e:
        print(f"kfab scheduler: {e}", file=sys.stderr)
        return 2
    return server.run_scheduler(args.kubeconfig, election, args.scheduler_name, args.verbose)


def vip_command(args) -> int:
    try:
        ipaddress.IPv4Address(args.address)
        ipaddress.IPv4Address(args.own_address)
    except ValueError as e:
        print(f"kfab vip: {e}", file=sys.stderr)
        return 2
    try:
        return vip.run(args.kubeconfig, args.address, args.own_address, args.identity or socket.gethostname(),
                       verbose=args.verbose)
    except KubeconfigError as e:
        print(f"kfab vip: {e}", file=sys.stderr)
        return 1


def rotate_encryption_key_command(args) -> int:
    if args.data_dir is None:
        print("kfab rotate-encryption-key: --data-dir DIR (kfab server) or -i INVENTORY (a cluster) is required",
              file=sys.stderr)
        return 2
    data_dir = args.data_dir.resolve()
    config = data_dir / "pki" / ENCRYPTION_CONFIG_FILE
    if not config.exists():
        print(f"kfab rotate-encryption-key: {config} does not exist (has kfab server run in {data_dir}?)",
              file=sys.stderr)
        return 1

    async def rotate() -> int:
        store = await open_store(f"sqlite:///{data_dir / 'state.db'}")
        try:
            return await rotate_key(store, config)
        finally:
            await store.close()

    try:
        rewritten = asyncio.run(rotate())
    except (StoreError, EncryptionConfigError) as e:
        print(f"kfab rotate-encryption-key: {e}", file=sys.stderr)
        return 1
    print(f"new encryption key in {config}; {rewritten} stored objects re-encrypted, the old key removed")
    return 0
