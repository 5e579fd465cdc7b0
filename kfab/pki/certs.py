"""The control plane's certificates under `<data_dir>/pki`, and the API server's TLS context.

Files (all mode 0600):
    ca.crt, ca.key                 the cluster CA (10 years)
    apiserver.crt, apiserver.key   the API server's serving certificate
    admin.crt, admin.key           the admin client certificate (CN=kubernetes-admin, O=system:masters)
    sa.key                         the key that signs ServiceAccount tokens (every API server of a cluster
                                   has the same one: each verifies the others' tokens)
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from kfab.pki import ca as ca_mod
from kfab.pki.ca import KeyPair, PKIError

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS = ("system:masters",)
# The names in-cluster clients use for the API server, as kubeadm puts them in its serving certificate.
SERVICE_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", "localhost")
# 10.96.0.1: the first address of the default service CIDR, the `kubernetes` Service's ClusterIP.
SERVICE_IPS = ("127.0.0.1", "10.96.0.1")
# Reissue a leaf certificate this close to expiry instead of keeping it.
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ControlPlanePKI:
    dir: Path

    @property
    def ca_cert_path(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key_path(self) -> Path:
        return self.dir / "ca.key"

    @property
    def apiserver_cert_path(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def apiserver_key_path(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_cert_path(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key_path(self) -> Path:
        return self.dir / "admin.key"

    @property
    def service_account_key_path(self) -> Path:
        return self.dir / "sa.key"

    @property
    def ca_cert_pem(self) -> bytes:
        return self.ca_cert_path.read_bytes()

    @property
    def admin_cert_pem(self) -> bytes:
        return self.admin_cert_path.read_bytes()

    @property
    def admin_key_pem(self) -> bytes:
        return self.admin_key_path.read_bytes()

    def load_ca(self) -> KeyPair:
        return ca_mod.load(self.ca_cert_path, self.ca_key_path)


def _split_names(hostnames: list[str], ips: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = list(SERVICE_NAMES)
    addrs: list[str] = list(SERVICE_IPS)
    for h in hostnames:
        try:  # an address given as a hostname belongs in the IP SANs (clients match IPs only there)
            addrs.append(str(ipaddress.ip_address(h)))
        except ValueError:
            if not h or any(c.isspace() for c in h):
                raise PKIError(f"hostname {h!r} is not a valid DNS name for the API server certificate") from None
            names.append(h.lower())
    for i in ips:
        try:
            addrs.append(str(ipaddress.ip_address(i)))
        except ValueError:
            raise PKIError(f"{i!r} is not an IP address (API server certificate IPs)") from None
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(addrs))


def _still_good(pair: KeyPair, ca: KeyPair) -> bool:
    now = datetime.datetime.now(datetime.timezone.utc)
    return ca_mod.signed_by(pair.cert, ca.cert) and pair.cert.not_valid_after_utc - now > RENEW_BEFORE


def _load_if_present(cert_path: Path, key_path: Path) -> KeyPair | None:
    if not cert_path.exists() and not key_path.exists():
        return None
    return ca_mod.load(cert_path, key_path)


def ensure_control_plane_pki(data_dir: Path, hostnames: list[str], ips: list[str]) -> ControlPlanePKI:
    """Create what is missing under data_dir/pki and keep what exists.

    An existing serving certificate is kept unless it lacks one of the wanted names/IPs, was not signed
    by the CA, or is near expiry; then only it is reissued (same CA, so issued kubeconfigs stay valid).
    """
    pki = ControlPlanePKI(Path(data_dir) / "pki")
    pki.dir.mkdir(parents=True, exist_ok=True)
    pki.dir.chmod(0o700)
    names, addrs = _split_names(hostnames, ips)

    ca = _load_if_present(pki.ca_cert_path, pki.ca_key_path)
    if ca is None:
        ca = ca_mod.new_ca()
        ca_mod.save(ca, pki.ca_cert_path, pki.ca_key_path)

    serving = _load_if_present(pki.apiserver_cert_path, pki.apiserver_key_path)
    if serving is not None:
        have_names, have_ips = ca_mod.san_names(serving.cert)
        if not (_still_good(serving, ca) and set(names) <= have_names and set(addrs) <= have_ips):
            serving = None
    if serving is None:
        serving = ca_mod.issue(ca, "kube-apiserver", server_names=names, server_ips=addrs)
        ca_mod.save(serving, pki.apiserver_cert_path, pki.apiserver_key_path)

    admin = _load_if_present(pki.admin_cert_path, pki.admin_key_path)
    if admin is None or not _still_good(admin, ca):
        admin = ca_mod.issue(ca, ADMIN_USER, ADMIN_GROUPS, client=True)
        ca_mod.save(admin, pki.admin_cert_path, pki.admin_key_path)

    if not pki.service_account_key_path.exists():  # `kfab up` puts the cluster's own key here first
        ca_mod.write_private(pki.service_account_key_path, ca_mod.key_to_pem(ca_mod.new_key()))
    return pki


def load_control_plane_pki(data_dir: Path) -> ControlPlanePKI:
    """The PKI an API server created in data_dir; PKIError naming the file when it is not there."""
    pki = ControlPlanePKI(Path(data_dir) / "pki")
    pki.load_ca()
    return pki


def issue_client_cert(pki: ControlPlanePKI, user: str, groups: list[str] | tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    """(cert_pem, key_pem) of a client certificate for `user` in `groups`, signed by the cluster CA."""
    if not user:
        raise PKIError("a client certificate needs a user name")
    return _pems(ca_mod.issue(pki.load_ca(), user, tuple(groups), client=True))


def write_node_serving_cert(data_dir: Path, node_name: str, ips: list[str], out_dir: Path) -> Path:
    """A node agent's serving certificate from the cluster CA in data_dir: out_dir/node.crt, node.key and
    ca.crt (CN system:node:<name>, O system:nodes, as the kubelet's). Returns the certificate's path."""
    pki = load_control_plane_pki(data_dir)
    pair = ca_mod.issue(pki.load_ca(), f"system:node:{node_name}", ("system:nodes",),
                        server_names=(node_name,), server_ips=tuple(ips))
    out_dir.mkdir(parents=True, exist_ok=True)
    ca_mod.save(pair, out_dir / "node.crt", out_dir / "node.key")
    (out_dir / "ca.crt").write_bytes(pki.ca_cert_pem)
    return out_dir / "node.crt"


def _pems(pair: KeyPair) -> tuple[bytes, bytes]:
    return pair.cert_pem, pair.key_pem


def server_ssl_context(pki: ControlPlanePKI) -> ssl.SSLContext:
    """TLS for the API server: its serving cert, and an optional client cert that must chain to the CA.

    CERT_OPTIONAL: clients with only a bearer token (or nothing, to get 401) still connect; a client
    that does present a certificate is refused at the handshake if the CA did not sign it.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.apiserver_cert_path, pki.apiserver_key_path)
    ctx.load_verify_locations(cafile=str(pki.ca_cert_path))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def client_ssl_context(pki: ControlPlanePKI, cert_path: Path | None = None,
                       key_path: Path | None = None) -> ssl.SSLContext:
    """TLS for an in-process client of the API server (controllers, tests): trusts the cluster CA only."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_cert_path))
    if cert_path is not None:
        ctx.load_cert_chain(cert_path, key_path)
    return ctx
