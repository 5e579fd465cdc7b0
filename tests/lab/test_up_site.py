"""`kfab up` installs the whole site on bare lab hosts (the session's `site`, tests/lab/site_cluster.py):
u1 control plane + registry, u2/u3 workers with the node agent, the service proxy and cluster DNS behind
kube-system/kube-dns at 10.96.0.10. Checked as a user would: kubectl, pods on each worker, names and
ClusterIPs from inside pods (`podman exec` over SSH), credentials on the workers, plan/up after a hand edit,
and a worker host restart (last: it disturbs the others)."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.lab.node_cluster import (BUSYBOX_IMAGE, TLS_CLIENT_IMAGE, build_busybox_image, build_tls_client_image,
                                    wait_for)
from tests.lab.test_network_services import client_pod, exec_in, ready_endpoints, web_deployment
from tests.waiting import wait_until


# The first test of the session sets up the `site` (bare hosts -> `kfab up`): minutes on a busy machine.
pytestmark = pytest.mark.timeout(2400)

WORKERS = ["u2", "u3"]
DNS_IP = "10.96.0.10"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
WEB_SERVICE_AND_NAMESPACE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
"""


def _get(site, kind: str, name: str, namespace: str = "default") -> dict:
    return json.loads(site.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


def _running(site, name: str, namespace: str = "default") -> dict | None:
    pod = _get(site, "pod", name, namespace)
    status = pod.get("status") or {}
    return pod if status.get("phase") == "Running" and status.get("podIP") else None


def _wget(site, pod: dict, url: str) -> str:
    """The page at `url` fetched from inside `pod` (retried for a while: endpoints settle after restarts)."""
    return wait_for(f"{url} from {pod['metadata']['name']}",
                    lambda: exec_in(site, pod, f"wget -qO- {url}").strip(), timeout=60)


def _node_ready(site, name: str) -> dict | None:
    node = _get(site, "node", name, "")
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))
    return node if ready and node["spec"].get("podCIDR") else None


@pytest.fixture(scope="module")
def workload(site):
    """The busybox image in the cluster registry; a web Deployment + Service; a client pod on each worker and
    one in namespace `other`."""
    with tempfile.TemporaryDirectory(prefix="kfab-up-site-") as tmp:
        build_busybox_image(Path(tmp))
    proc = site.kfab("image", "push", "-i", str(site.inventory), BUSYBOX_IMAGE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    image = proc.stdout.strip()

    def with_image(obj: dict) -> dict:
        spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]
        for c in spec["containers"]:
            c["image"] = image
        return obj
    web = with_image(web_deployment("web", replicas=2))
    # a probe that tolerates a busy machine: a flapping endpoint would make the checks below flaky
    web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"].update(
        {"periodSeconds": 3, "failureThreshold": 5, "timeoutSeconds": 10})
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump(web))
    site.kubectl("apply", "-f", "-", input=WEB_SERVICE_AND_NAMESPACE)
    clients = [(f"client-{h}", h, "default") for h in WORKERS] + [("client-other", "u3", "other")]
    for name, host, ns in clients:
        pod = with_image({"kind": "Pod", **client_pod(name, host, ns)})
        # kfab up evicts a lost node's pods after seconds (issue 15's defaults); these pinned pods ask, as a user's
        # would, to ride out a host restart (a restart on a loaded machine takes longer than those seconds)
        pod["spec"]["tolerations"] = [{"key": f"node.kubernetes.io/{taint}", "operator": "Exists",
                                       "effect": "NoExecute", "tolerationSeconds": 600}
                                      for taint in ("not-ready", "unreachable")]
        site.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod))
    for name, _, ns in clients:
        wait_for(f"pod {ns}/{name} running", lambda name=name, ns=ns: _running(site, name, ns), timeout=180)
    wait_for("2 ready web endpoints", lambda: len(ready_endpoints(site, "web")) == 2, timeout=180)
    return {"image": image, "web_ip": _get(site, "service", "web")["spec"]["clusterIP"]}


def test_up_prints_where_the_admin_kubeconfig_is_and_the_next_command(site):
    assert f"Admin kubeconfig: {site.kubeconfig}" in site.up_output
    assert f"Next: kubectl --kubeconfig {site.kubeconfig} get nodes" in site.up_output
    print(f"first kfab up of the whole site: {site.up_seconds:.0f}s")


def test_every_worker_is_a_ready_node_with_a_pod_cidr(site):
    nodes = json.loads(site.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == WORKERS
    cidrs = {n["metadata"]["name"]: _node_ready(site, n["metadata"]["name"])["spec"]["podCIDR"] for n in nodes}
    assert len(set(cidrs.values())) == 2 and all(c.startswith("10.244.") for c in cidrs.values()), cidrs
    for host in WORKERS:
        for unit in ("podman.socket", "kfab-node", "kfab-proxy", "kfab-dns", "kfab-ingress"):
            assert site.ssh(host, f"systemctl is-active {unit}").stdout.strip() == "active", (host, unit)
            assert site.ssh(host, f"systemctl is-enabled {unit}").stdout.strip() == "enabled", (host, unit)


def test_cluster_dns_is_the_kube_dns_service_served_from_every_worker(site):
    svc = _get(site, "service", "kube-dns", "kube-system")
    assert svc["spec"]["clusterIP"] == DNS_IP
    assert sorted((p["protocol"], p["port"]) for p in svc["spec"]["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert ready_endpoints(site, "kube-dns", "kube-system") == sorted(site.lab.hosts[h] for h in WORKERS)


def test_a_pod_on_each_worker_gets_cluster_dns_in_its_resolv_conf(site, workload):
    for host in WORKERS:
        conf = exec_in(site, _get(site, "pod", f"client-{host}"), "cat /etc/resolv.conf")
        assert f"nameserver {DNS_IP}" in conf.split("\n"), conf
        assert "search default.svc.cluster.local svc.cluster.local cluster.local" in conf, conf


def test_pods_on_both_workers_resolve_services_by_fqdn_and_short_name(site, workload):
    names = {p["metadata"]["name"] for p in json.loads(site.kubectl("get", "pods", "-l", "app=web", "-o",
                                                                     "json").stdout)["items"]}
    for host in WORKERS:
        pod = _get(site, "pod", f"client-{host}")
        out = wait_for(f"nslookup of the kubernetes Service from {host}",
                       lambda pod=pod: exec_in(site, pod, "nslookup kubernetes.default.svc.cluster.local"), timeout=30)
        assert "Address: 10.96.0.1" in out, out
        # The short name through resolv.conf's search list (busybox nslookup ignores it; nc resolves as libc
        # does). Only the name matters here: "bad address" is what a name that does not resolve gives.
        assert "bad address" in exec_in(site, pod, "nc -w 2 nosuch.default 443 </dev/null 2>&1; true")
        assert "bad address" not in exec_in(site, pod, "nc -w 2 kubernetes.default 443 </dev/null 2>&1; true")
        # ...and the API server answers there: its address is a control-plane host without pod routes, so
        # the proxy masquerades (the `kubernetes` EndpointSlice, DNAT to a host outside the pod network).
        assert "open" in exec_in(site, pod, "nc -w 5 kubernetes.default 443 </dev/null && echo open; true")
        assert _wget(site, pod, "http://web/") in names
        assert _wget(site, pod, "http://web.default.svc.cluster.local/") in names
    other = _get(site, "pod", "client-other", "other")
    assert _wget(site, other, "http://web.default/") in names
    assert exec_in(site, other, "wget -qO- http://web/ >/dev/null 2>&1 && echo found || echo missing").strip() \
        == "missing"


def test_the_cluster_ip_answers_from_pods_on_both_workers(site, workload):
    names = {p["metadata"]["name"] for p in json.loads(site.kubectl("get", "pods", "-l", "app=web", "-o",
                                                                     "json").stdout)["items"]}
    for host in WORKERS:
        pod = _get(site, "pod", f"client-{host}")
        seen = set()

        def all_seen(pod=pod, seen=seen):
            out = exec_in(site, pod, f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://{workload['web_ip']}/; done")
            seen.update(out.split())
            return seen >= names
        wait_for(f"both web replicas answering the ClusterIP from {host} (seen {seen})", all_seen, timeout=60)


def in_cluster_get(path: str, host: str = "$KUBERNETES_SERVICE_HOST", port: str = "$KUBERNETES_SERVICE_PORT",
                   verify: str = "-verify_ip $KUBERNETES_SERVICE_HOST") -> str:
    """A shell command for a pod of the TLS client image: GET `path` from the API server as client-go's
    InClusterConfig does (the address from the Service variables, the ServiceAccount's token, its ca.crt
    verifying the served certificate for that address), the HTTP answer on stdout."""
    request = (f'GET {path} HTTP/1.1\\r\\nHost: {host}\\r\\nAuthorization: Bearer %s\\r\\n'
               'Connection: close\\r\\n\\r\\n')
    return (f'printf "{request}" "$(cat {SA_DIR}/token)" | openssl s_client -quiet -connect {host}:{port} '
            f'-CAfile {SA_DIR}/ca.crt {verify} -verify_return_error -verify_quiet 2>&1; true')


def http_status(answer: str) -> str:
    """The status line of an in_cluster_get answer (s_client may say something before it)."""
    return next((line for line in answer.split("\n") if line.startswith("HTTP/1.1 ")), answer)


def test_a_pod_reads_its_namespace_with_its_service_account_token_and_rbac_refuses_the_rest(site, workload):
    """An in-cluster client: the projected token, CA and namespace under /var/run/secrets/kubernetes.io/
    serviceaccount and the `kubernetes` Service's variables reach the API server as the pod's ServiceAccount,
    with that account's RBAC, over TLS verified against the pod's ca.crt."""
    with tempfile.TemporaryDirectory(prefix="kfab-up-site-tls-") as tmp:
        build_tls_client_image(Path(tmp))
    proc = site.kfab("image", "push", "-i", str(site.inventory), TLS_CLIENT_IMAGE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    client = client_pod("sa-client", WORKERS[-1], "other")
    client["spec"]["containers"][0]["image"] = proc.stdout.strip()
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump(client))
    site.kubectl("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=other:default",
                 "-n", "other")
    pod = wait_for("pod other/sa-client running", lambda: _running(site, "sa-client", "other"), timeout=180)
    assert exec_in(site, pod, f"cat {SA_DIR}/namespace") == "other"
    cluster = yaml.safe_load(Path(site.kubeconfig).read_text())["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    assert exec_in(site, pod, f"cat {SA_DIR}/ca.crt") == ca
    # what client-go's InClusterConfig reads: the `kubernetes` Service's address in the container's environment
    env = exec_in(site, pod, "env | grep ^KUBERNETES_SERVICE_ | sort").split()
    assert env == ["KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443",
                   "KUBERNETES_SERVICE_PORT_HTTPS=443"], env
    # the certificate served at the Service's DNS name verifies for that name against the pod's CA too
    by_name = exec_in(site, pod, in_cluster_get("/version", host="kubernetes.default.svc", port="443",
                                                verify="-verify_hostname kubernetes.default.svc"))
    assert http_status(by_name) == "HTTP/1.1 200 OK", by_name

    def listed() -> str:
        answer = exec_in(site, pod, in_cluster_get("/api/v1/namespaces/other/pods"))
        assert http_status(answer) == "HTTP/1.1 200 OK" and '"PodList"' in answer, answer   # the last one on timeout
        return answer
    assert '"sa-client"' in wait_until("its namespace's pods listed with its token", listed, timeout=60,
                                       interval=2, retry_on=(AssertionError,))
    for refused in ("/api/v1/namespaces/other/secrets", "/api/v1/namespaces/default/pods"):
        answer = exec_in(site, pod, in_cluster_get(refused))
        assert http_status(answer) == "HTTP/1.1 403 Forbidden", answer
        assert 'User \\"system:serviceaccount:other:default\\" cannot' in answer, answer
    site.kubectl("delete", "pod", "sa-client", "-n", "other", "--wait=false")


def test_an_indexed_job_runs_to_completion_on_the_workers_and_kubectl_logs_shows_it(site, workload):
    """A Job's pods on real node agents: each gets JOB_COMPLETION_INDEX through the downward API, exits 0, the
    Job completes (`kubectl wait`), and `kubectl logs job/...` reads a pod's output through the API server."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "count", "namespace": "default"},
           "spec": {"completions": 2, "parallelism": 2, "completionMode": "Indexed", "template": {"spec": {
               "restartPolicy": "Never",
               "containers": [{"name": "count", "image": workload["image"],
                               "command": ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX"]}]}}}}
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump(job))
    site.kubectl("wait", "--for=condition=Complete", "job/count", "--timeout=180s", timeout=200)
    status = _get(site, "job", "count")["status"]
    assert (status["succeeded"], status["completedIndexes"]) == (2, "0,1")
    assert site.kubectl("logs", "job/count").stdout.strip() in ("index=0", "index=1")
    site.kubectl("delete", "job", "count")


def _subjects(site, host: str) -> dict[str, tuple[str, list[str]]]:
    """Every certificate under /etc/kfab on `host` (files and kubeconfig users): path -> (CN, O list)."""
    out = {}
    listing = site.ssh(host, "ls /etc/kfab").stdout.split()
    for name in listing:
        text = site.ssh(host, f"cat /etc/kfab/{name}").stdout
        if name.endswith(".kubeconfig"):
            pems = [base64.b64decode(u["user"]["client-certificate-data"])
                    for u in yaml.safe_load(text)["users"]]
        elif name.endswith(".crt"):
            pems = [text.encode()]
        else:
            continue
        for pem in pems:
            cert = x509.load_pem_x509_certificate(pem)
            out[name] = (cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
                         [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)])
    return out


def test_workers_hold_only_their_own_credentials(site):
    for host in WORKERS:
        subjects = _subjects(site, host)
        assert not [p for p, (_, orgs) in subjects.items() if "system:masters" in orgs], subjects
        assert {p: cn for p, (cn, _) in subjects.items() if p != "ca.crt"} == {
            "node.kubeconfig": f"system:node:{host}", "node.crt": f"system:node:{host}",
            "proxy.kubeconfig": "system:kube-proxy", "dns.kubeconfig": "system:kube-dns",
            "ingress.kubeconfig": "system:kfab-ingress"}
        assert site.ssh(host, "ls /var/lib/kfab/pki", check=False).returncode != 0   # no CA key, no admin pair
        modes = site.ssh(host, "stat -c '%a %n' /etc/kfab/*.key /etc/kfab/*.kubeconfig").stdout.split("\n")
        assert all(line.startswith("600 ") for line in modes if line), modes


def test_the_control_plane_state_is_roots_only_and_holds_no_secret_in_clear(site):
    value = f"lab-at-rest-{secrets.token_hex(6)}"
    site.kubectl("create", "secret", "generic", "at-rest", f"--from-literal=v={value}")
    try:
        lines = site.ssh("u1", "stat -c '%a %n' /var/lib/kfab /var/lib/kfab/state /var/lib/kfab/state/state.db* "
                               "/var/lib/kfab/pki/encryption-config.yaml").stdout.split("\n")
        modes = dict(reversed(line.split(" ", 1)) for line in lines if line)
        assert modes.pop("/var/lib/kfab") == "700" and modes.pop("/var/lib/kfab/state") == "700", modes
        assert set(modes.values()) == {"600"} and "/var/lib/kfab/state/state.db" in modes, modes
        encoded = base64.b64encode(value.encode()).decode()
        found = site.ssh("u1", f"grep -rlaF -e {value} -e {encoded} /var/lib/kfab/state || true").stdout.strip()
        assert found == "", f"the Secret's value in clear in {found}"
        # kfab up turns the audit log on at Metadata: the create is there, its value is not
        audit = site.ssh("u1", "stat -c %a /var/log/kfab/audit.log && grep -a '\"name\":\"at-rest\"' "
                               "/var/log/kfab/audit.log").stdout
        assert audit.startswith("600\n") and '"level":"Metadata"' in audit and value not in audit, audit
    finally:
        site.kubectl("delete", "secret", "at-rest", check=False)


def test_worker_credentials_are_refused_what_they_do_not_need(site, tmp_path):
    binary = [shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"]
    for user, file in (("node", "node.kubeconfig"), ("dns", "dns.kubeconfig"), ("proxy", "proxy.kubeconfig")):
        local = tmp_path / file
        local.write_text(site.ssh("u2", f"cat /etc/kfab/{file}").stdout)

        def kubectl(*args, local=local):
            return subprocess.run([*binary, "--kubeconfig", str(local), *args], capture_output=True, text=True,
                                  timeout=60)
        denied = kubectl("get", "secrets", "-A")
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), (user, denied.stderr)
        # ... while what each needs works (so the refusal is RBAC, not a broken kubeconfig)
        allowed = kubectl("get", "services", "-A")
        assert allowed.returncode == 0, (user, allowed.stderr)
    node = tmp_path / "node.kubeconfig"
    proc = subprocess.run([*binary, "--kubeconfig", str(node), "delete", "service", "web"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "forbidden" in proc.stderr.lower()


def test_plan_shows_exactly_a_hand_edit_on_a_worker_and_up_puts_it_back(site):
    # A file of the worker's credentials: the plan shows it and the agent restart its change notifies (a handler,
    # reported changed in check mode as Ansible does); the up puts it back and restarts the agent, which comes
    # back Ready.
    assert site.plan_after_hand_edit("u3", "/etc/kfab/ca.crt") == {"u1": 0, "u2": 0, "u3": 2}
    wait_for("node u3 Ready", lambda: _node_ready(site, "u3"), timeout=120)


def test_a_restarted_worker_comes_back_ready_with_its_pods_routes_and_dns(site, workload):
    before = _get(site, "pod", "client-u3")["status"]["containerStatuses"][0]["containerID"]
    u2_cidr = _node_ready(site, "u2")["spec"]["podCIDR"]
    subprocess.run(["podman", "restart", "-t", "5", "u3"], check=True, capture_output=True, timeout=180)

    def back():
        pod = _running(site, "client-u3")
        cs = ((pod or {}).get("status", {}).get("containerStatuses") or [{}])[0]
        return pod if cs.get("containerID") not in (None, before) and cs.get("ready") else None
    pod = wait_for("client-u3 running again after the host restart", back, timeout=240, interval=1)
    wait_for("node u3 Ready", lambda: _node_ready(site, "u3"), timeout=120)
    routes = site.ssh("u3", "ip route").stdout
    assert f"{u2_cidr} via {site.lab.hosts['u2']}" in routes, routes
    # its slice came back: DNS answers from both workers again
    wait_for("kube-dns served from u2 and u3", lambda: ready_endpoints(site, "kube-dns", "kube-system") ==
             sorted(site.lab.hosts[h] for h in WORKERS), timeout=60)
    names = {p["metadata"]["name"] for p in json.loads(site.kubectl("get", "pods", "-l", "app=web", "-o",
                                                                     "json").stdout)["items"]}
    assert _wget(site, pod, "http://web/") in names
