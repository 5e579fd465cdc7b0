"""`kfab server` / `kfab apiserver` as a user runs them: start, serve, stop cleanly, start again with the state."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import urllib.request

import pytest
from kubernetes import client, config

from tests.api.conftest import REPO, start_server, stop_server


def test_health_endpoints_need_no_credentials(kfab_server):
    ctx = ssl.create_default_context(cafile=str(kfab_server.data_dir / "pki" / "ca.crt"))
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        with urllib.request.urlopen(f"{kfab_server.url}{path}", context=ctx, timeout=5) as resp:
            assert resp.status == 200
    with urllib.request.urlopen(f"{kfab_server.url}/version", context=ctx, timeout=5) as resp:
        assert json.load(resp)["major"] == "1"


def test_kubernetes_service_points_at_the_api_server(k8s, kfab_server):
    core = client.CoreV1Api(k8s)
    svc = core.read_namespaced_service("kubernetes", "default")
    assert svc.spec.cluster_ip == "10.96.0.1" and svc.spec.ports[0].port == 443
    ep = core.read_namespaced_endpoints("kubernetes", "default")
    port = int(kfab_server.url.rsplit(":", 1)[1])
    assert [a.ip for a in ep.subsets[0].addresses] == ["127.0.0.1"] and ep.subsets[0].ports[0].port == port
    # Service proxies read EndpointSlices: the API server keeps one for itself too, as kube-apiserver does.
    eps = client.DiscoveryV1Api(k8s).read_namespaced_endpoint_slice("kubernetes", "default")
    assert eps.metadata.labels["kubernetes.io/service-name"] == "kubernetes" and eps.address_type == "IPv4"
    assert [e.addresses for e in eps.endpoints] == [["127.0.0.1"]] and eps.endpoints[0].conditions.ready
    assert [(p.name, p.port, p.protocol) for p in eps.ports] == [("https", port, "TCP")]


def test_sigterm_stops_cleanly_with_open_watches_and_state_survives_restart(tmp_path):
    proc, server = start_server(tmp_path, "--disable-controllers")
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map("default", {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    watch = core.list_namespaced_config_map("default", watch=True, _preload_content=False)  # left open
    try:
        assert stop_server(proc) == 0
    finally:
        watch.release_conn()
        api.close()

    proc, server = start_server(tmp_path, "--disable-controllers")
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    try:
        core = client.CoreV1Api(api)
        again = core.read_namespaced_config_map("kept", "default")
        assert again.data == {"k": "v"} and again.metadata.uid == made.metadata.uid
        assert again.metadata.resource_version == made.metadata.resource_version
        later = core.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
        assert int(later.metadata.resource_version) > int(made.metadata.resource_version)
    finally:
        api.close()
        assert stop_server(proc) == 0


def run_kfab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kfab", *args], capture_output=True, text=True, timeout=60,
                          cwd=REPO, stdin=subprocess.DEVNULL)


def test_apiserver_with_a_bad_store_url_names_it(tmp_path):
    result = run_kfab("apiserver", "--store", "mysql://db:3306", "--data-dir", str(tmp_path), "--port", "0")
    assert result.returncode == 1
    assert "mysql://db:3306" in result.stderr and "unknown scheme" in result.stderr


def _one_clear_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


def test_apiserver_with_etcd_unreachable_names_the_store_in_one_line(tmp_path):
    from tests.etcd_cluster import free_port

    url = f"etcd://127.0.0.1:{free_port()}"  # nothing listens there
    result = run_kfab("apiserver", "--store", url, "--data-dir", str(tmp_path), "--port", "0")
    _one_clear_line(result, url, "unavailable")
    assert not (tmp_path / "admin.kubeconfig").exists()


def test_apiserver_on_a_file_that_is_not_a_database_names_it(tmp_path):
    junk = tmp_path / "state.db"
    junk.write_text("not sqlite\n" * 100)
    result = run_kfab("apiserver", "--store", f"sqlite:///{junk}", "--data-dir", str(tmp_path / "data"),
                      "--port", "0")
    _one_clear_line(result, f"sqlite:///{junk}", "not a database")


def test_server_with_a_data_dir_that_cannot_be_made_says_so(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_kfab("server", "--data-dir", str(blocker / "data"), "--port", "0", "--disable-controllers")
    _one_clear_line(result, f"cannot create the data directory {blocker / 'data'}")


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_kfab("server", "--data-dir", str(tmp_path), "--port", str(port), "--disable-controllers")
    assert result.returncode == 1
    assert str(port) in result.stderr and "address already in use" in result.stderr.lower()


@pytest.mark.parametrize("flag", ["--port", "--bind"])
def test_bad_listen_arguments(tmp_path, flag):
    value = "not-a-port" if flag == "--port" else "999.1.1.1"
    result = run_kfab("server", "--data-dir", str(tmp_path), flag, value, "--disable-controllers")
    assert result.returncode != 0 and value in result.stderr


def test_second_server_on_the_same_data_dir_is_refused(kfab_server):
    result = run_kfab("server", "--data-dir", str(kfab_server.data_dir), "--port", "0", "--disable-controllers")
    assert result.returncode == 1
    assert "already in use by another process" in result.stderr and "Traceback" not in result.stderr
