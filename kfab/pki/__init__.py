"""Cluster PKI: the CA, the API server's serving certificate, client certificates, kubeconfigs."""

from kfab.pki.ca import PKIError
from kfab.pki.certs import (
    ADMIN_GROUPS,
    ADMIN_USER,
    ControlPlanePKI,
    client_ssl_context,
    ensure_control_plane_pki,
    issue_client_cert,
    load_control_plane_pki,
    server_ssl_context,
    write_node_serving_cert,
)
from kfab.pki.kubeconfig import kubeconfig, server_url_of, write_kubeconfig

__all__ = [
    "ADMIN_GROUPS", "ADMIN_USER", "ControlPlanePKI", "PKIError", "client_ssl_context", "ensure_control_plane_pki",
    "issue_client_cert", "kubeconfig", "load_control_plane_pki", "server_ssl_context", "server_url_of",
    "write_kubeconfig", "write_node_serving_cert",
]
