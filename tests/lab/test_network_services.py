"""The pod network, the service proxy and cluster DNS on real lab workers (nw2, nw3 of a lab of their own,
tests/lab/inventory/network.yml): `kfab server` on this machine, `kfab node` (with its host-gw routes) on
each worker, and `kfab proxy` + `kfab dns` started on the workers as transient systemd units by this test —
driven with kubectl, checked from inside pods (`podman exec` over SSH) and from the hosts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kfab.dns.resolvconf import pod_resolv_conf
from tests.lab.conftest import fresh_lab
from tests.lab.node_cluster import BUSYBOX_IMAGE, KFAB, NodeCluster
from tests.waiting import wait_until

WORKERS = ["nw2", "nw3"]
INVENTORY = Path(__file__).parent / "inventory" / "network.yml"
KFAB_ON_HOST = "/opt/kfab/venv/bin/kfab"
DNS_PORT = 5353
DNS_IP = "10.96.0.10"   # kube-dns's ClusterIP, fixed so the agents start with --cluster-dns before it exists

# busybox httpd: / answers the pod's name, /cgi-bin/ip the client address it sees (REMOTE_ADDR).
HTTPD = ("mkdir -p /www/cgi-bin && hostname > /www/index.html && "
         "busybox printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' "
         "> /www/cgi-bin/ip && busybox chmod +x /www/cgi-bin/ip && touch /www/ready && "
         "exec httpd -f -p 8080 -h /www")


@pytest.fixture(scope="module")
def netlab():
    yield from fresh_lab(INVENTORY)


@pytest.fixture(scope="module")
def cluster(netlab):
    c = NodeCluster(netlab, WORKERS, extra_vars={"node_agent_cluster_dns": DNS_IP}).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def services(cluster):
    """`kfab proxy` on every worker, `kfab dns` on nw2 behind the Service kube-system/kube-dns."""
    creds = cluster.workdir / "proxy.kubeconfig"
    subprocess.run(KFAB + ["kubeconfig", "--data-dir", str(cluster.data_dir), "--user", "system:kube-proxy",
                           "--server", cluster.server_url, "-o", str(creds)], check=True, capture_output=True)
    try:
        for host in WORKERS:
            with open(creds, "rb") as f:
                subprocess.run(cluster.lab.lab.ssh_command(host) + ["cat > /etc/kfab/proxy.kubeconfig"], stdin=f,
                               check=True, capture_output=True, timeout=60)
            cluster.lab.ssh(host, f"systemd-run --unit kfab-proxy-test {KFAB_ON_HOST} proxy "
                                  f"--kubeconfig /etc/kfab/proxy.kubeconfig --node-name {host}")
        dns_listen = f"{cluster.lab.hosts['nw2']}:{DNS_PORT}"
        cluster.lab.ssh("nw2", f"systemd-run --unit kfab-dns-test {KFAB_ON_HOST} dns "
                               f"--kubeconfig /etc/kfab/proxy.kubeconfig --listen {dns_listen}")
        dns_host = cluster.lab.hosts["nw2"]
        cluster.apply(f"""
apiVersion: v1
kind: Service
metadata: {{name: kube-dns, namespace: kube-system}}
spec:
  clusterIP: {DNS_IP}
  ports:
  - {{name: dns, port: 53, protocol: UDP, targetPort: {DNS_PORT}}}
  - {{name: dns-tcp, port: 53, protocol: TCP, targetPort: {DNS_PORT}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-nw2
  namespace: kube-system
  labels: {{kubernetes.io/service-name: kube-dns}}
addressType: IPv4
ports: [{{name: dns, port: {DNS_PORT}, protocol: UDP}}, {{name: dns-tcp, port: {DNS_PORT}, protocol: TCP}}]
endpoints: [{{addresses: ["{dns_host}"], conditions: {{ready: true}}}}]
""")
        yield cluster.get("service", "kube-dns", "kube-system")["spec"]["clusterIP"]
    finally:
        for host in WORKERS:
            cluster.lab.ssh(host, "systemctl stop kfab-proxy-test kfab-dns-test 2>/dev/null; "
                                  f"{KFAB_ON_HOST} proxy --kubeconfig /etc/kfab/proxy.kubeconfig --cleanup; true")


def web_deployment(name: str, namespace: str = "default", replicas: int = 3) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "topologySpreadConstraints": [],
                         "containers": [{"name": "httpd", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                                         "command": ["sh", "-c", HTTPD], "ports": [{"containerPort": 8080}],
                                         "readinessProbe": {"exec": {"command": ["cat", "/www/ready"]},
                                                            "periodSeconds": 1, "failureThreshold": 1}}]}}}}


def client_pod(name: str, node: str, namespace: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "100000"]}]}}


def pods(cluster, selector: str, namespace: str = "default") -> list[dict]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return json.loads(out)["items"]


def running(cluster, name: str, namespace: str = "default") -> dict | None:
    pod = cluster.get("pod", name, namespace)
    return pod if (pod.get("status") or {}).get("phase") == "Running" and pod["status"].get("podIP") else None


def exec_in(cluster, pod: dict, cmd: str, check: bool = True) -> str:
    """Run `cmd` with sh in the pod's first container, on its node, with podman exec."""
    host, name = pod["spec"]["nodeName"], pod["metadata"]["name"]
    ns = pod["metadata"]["namespace"]
    ctr = cluster.lab.ssh(host, f"podman ps --format '{{{{.Names}}}}' --filter label=kfab.io/pod-name={name} "
                                f"--filter label=kfab.io/pod-namespace={ns} --filter label=kfab.io/container="
                                f"{pod['spec']['containers'][0]['name']}").stdout.split()[-1]
    proc = cluster.lab.ssh(host, f"podman exec {ctr} sh -c {_quote(cmd)}", check=check)
    return proc.stdout


def client_address(text: str) -> str:
    """busybox httpd's REMOTE_ADDR is IPv4-mapped IPv6 ("[::ffff:10.244.1.2]")."""
    return text.strip().strip("[]").removeprefix("::ffff:")


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


@pytest.fixture(scope="module")
def web(cluster, services):
    cluster.apply(web_deployment("web"))
    cluster.kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080")
    for host in WORKERS:
        cluster.apply(client_pod(f"client-{host}", host))
    cluster.kubectl("create", "namespace", "other")
    cluster.apply(client_pod("client-other", "nw3", namespace="other"))
    for name, ns in [(f"client-{h}", "default") for h in WORKERS] + [("client-other", "other")]:
        wait_until(f"pod {ns}/{name} running",
                   lambda name=name, ns=ns: running(cluster, name, ns), 120, 0.2, retry_on=(Exception,))
    wait_until("3 ready web endpoints",
               lambda: len(ready_endpoints(cluster, "web")) == 3, 120, 0.2, retry_on=(Exception,))
    return cluster.get("service", "web")["spec"]["clusterIP"]


def ready_endpoints(cluster, service: str, namespace: str = "default") -> list[str]:
    out = cluster.kubectl("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}",
                          "-o", "json").stdout
    return sorted(a for s in json.loads(out)["items"] for e in s.get("endpoints") or []
                  if (e.get("conditions") or {}).get("ready") for a in e["addresses"])


def test_pods_reach_pods_on_the_other_node_with_their_own_address(cluster, web):
    backends = pods(cluster, "app=web")
    for host in WORKERS:
        client = cluster.get("pod", f"client-{host}")
        for backend in backends:
            seen = wait_until(f"{client['metadata']['name']} -> {backend['status']['podIP']}",
                              lambda b=backend, c=client: client_address(exec_in(
                                  cluster, c, f"wget -qO- http://{b['status']['podIP']}:8080/cgi-bin/ip")),
                              60, 0.2, retry_on=(Exception,))
            assert seen == client["status"]["podIP"]      # no SNAT between pods, same node or not


def test_hosts_reach_pods_on_the_other_node_with_their_own_address(cluster, web):
    checked = 0
    for backend in pods(cluster, "app=web"):
        for host in WORKERS:
            if backend["spec"]["nodeName"] == host:
                continue     # a local pod sees the bridge address: the host-gw part is the remote one
            seen = cluster.lab.ssh(host, f"curl -s --max-time 5 http://{backend['status']['podIP']}:8080/cgi-bin/ip")
            assert client_address(seen.stdout) == cluster.lab.hosts[host]
            checked += 1
    assert checked == 3


def test_cluster_ip_balances_over_every_replica_from_each_node(cluster, web):
    names = {p["metadata"]["name"] for p in pods(cluster, "app=web")}
    for host in WORKERS:
        client = cluster.get("pod", f"client-{host}")
        seen: set[str] = set()

        def all_seen(client=client, seen=seen):
            out = exec_in(cluster, client, f"i=0; while [ $i -lt 20 ]; do wget -qO- http://{web}/; i=$((i+1)); done")
            seen.update(out.split())
            return seen >= names
        wait_until(f"every replica answering {web} from {host} (seen {seen})", all_seen, 60, 0.2, retry_on=(Exception,))
        assert seen == names


def resolv_conf(text: str) -> dict[str, list[str]]:
    """nameserver/search/options of a resolv.conf, in order (options are single words)."""
    out: dict[str, list[str]] = {"nameserver": [], "search": [], "options": []}
    for line in text.splitlines():
        key, *values = line.split()
        if key in out:
            out[key].extend(values)
    return out


def test_service_names_resolve_from_pods_through_cluster_dns(cluster, web, services):
    assert services == DNS_IP
    other = cluster.get("pod", "client-other", "other")
    # Nobody touched the pods' resolv.conf: the node agent (--cluster-dns) had Podman write the kubelet's.
    assert resolv_conf(exec_in(cluster, other, "cat /etc/resolv.conf")) == \
        resolv_conf(pod_resolv_conf(DNS_IP, "other"))
    out = wait_until("wget by FQDN from namespace other",
                     lambda: exec_in(cluster, other, "wget -qO- http://web.default.svc.cluster.local/"),
                     60, 0.2, retry_on=(Exception,))
    assert out.strip() in {p["metadata"]["name"] for p in pods(cluster, "app=web")}
    same = cluster.get("pod", "client-nw2")
    assert exec_in(cluster, same, "wget -qO- http://web/").strip()         # short name in its own namespace
    assert exec_in(cluster, same, "wget -qO- http://web.default/").strip()  # <svc>.<ns> through the search path
    # Namespace `other` has no Service `web`: the short name does not resolve there.
    assert exec_in(cluster, other, "wget -qO- http://web/ >/dev/null 2>&1 && echo found || echo missing").strip() \
        == "missing"


def test_dns_policy_default_none_and_dns_config_as_kubernetes_documents(cluster, services):
    def pod(name: str, **spec) -> dict:
        manifest = client_pod(name, "nw3")
        manifest["spec"].update(spec)
        return manifest
    config = {"nameservers": ["192.0.2.53"], "searches": ["example.test"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    for manifest in (pod("dns-default", dnsPolicy="Default"), pod("dns-none", dnsPolicy="None", dnsConfig=config),
                     pod("dns-merged", dnsConfig=config)):
        cluster.apply(manifest)
    got = {}
    for name in ("dns-default", "dns-none", "dns-merged"):
        ready = wait_until(f"pod {name} running",
                           lambda name=name: running(cluster, name), 120, 0.2, retry_on=(Exception,))
        got[name] = resolv_conf(exec_in(cluster, ready, "cat /etc/resolv.conf"))
    host = resolv_conf(cluster.lab.ssh("nw3", "cat /etc/resolv.conf").stdout)
    # Default: the node's resolver configuration.
    assert got["dns-default"]["nameserver"] == host["nameserver"] and DNS_IP not in got["dns-default"]["nameserver"]
    # None: only what dnsConfig says.
    assert got["dns-none"] == {"nameserver": ["192.0.2.53"], "search": ["example.test"],
                               "options": ["ndots:2", "edns0"]}
    # ClusterFirst + dnsConfig: appended to the cluster's, and an option of the same name replaces the cluster's.
    assert got["dns-merged"]["nameserver"] == [DNS_IP, "192.0.2.53"]
    assert got["dns-merged"]["search"] == ["default.svc.cluster.local", "svc.cluster.local", "cluster.local",
                                           "example.test"]
    assert sorted(got["dns-merged"]["options"]) == ["edns0", "ndots:2"]
    cluster.kubectl("delete", "pod", "dns-default", "dns-none", "dns-merged", "--wait=false")


def _proxy_rules(cluster, host: str) -> str:
    return cluster.lab.ssh(host, "nft list table ip kfab").stdout


def test_a_pod_failing_readiness_leaves_the_proxy_rules_on_every_node(cluster, web):
    victim = pods(cluster, "app=web")[0]
    ip = victim["status"]["podIP"]
    for host in WORKERS:
        wait_until(f"{ip} in {host}'s rules",
                   lambda host=host: ip in _proxy_rules(cluster, host), 60, 0.2, retry_on=(Exception,))
    exec_in(cluster, victim, "rm /www/ready")
    try:
        for host in WORKERS:
            wait_until(f"{ip} out of {host}'s rules",
                       lambda host=host: ip not in _proxy_rules(cluster, host), 60, 0.2, retry_on=(Exception,))
        assert ip not in ready_endpoints(cluster, "web")
    finally:
        exec_in(cluster, victim, "touch /www/ready")
    for host in WORKERS:
        wait_until(f"{ip} back in {host}'s rules",
                   lambda host=host: ip in _proxy_rules(cluster, host), 60, 0.2, retry_on=(Exception,))


def test_node_port_answers_on_every_node_and_an_empty_service_refuses_at_once(cluster, web):
    cluster.kubectl("expose", "deployment", "web", "--name=web-np", "--type=NodePort", "--port=80",
                    "--target-port=8080")
    node_port = cluster.get("service", "web-np")["spec"]["ports"][0]["nodePort"]
    names = {p["metadata"]["name"] for p in pods(cluster, "app=web")}
    for target in WORKERS:
        for source in WORKERS:
            if source == target:
                continue
            url = f"http://{cluster.lab.hosts[target]}:{node_port}/"
            answer = wait_until(f"NodePort {url} from {source}",
                                lambda s=source, u=url: cluster.lab.ssh(s, f"curl -s --max-time 5 {u}",
                                                                        check=False).stdout.strip(),
                                60, 0.2, retry_on=(Exception,))
            assert answer in names

    cluster.kubectl("create", "service", "clusterip", "nobody", "--tcp=80:8080")   # selects no pod
    empty = cluster.get("service", "nobody")["spec"]["clusterIP"]
    for host in WORKERS:
        wait_until(f"{empty} rejected on {host}",
                   lambda host=host: empty in _proxy_rules(cluster, host), 60, 0.2, retry_on=(Exception,))
        client = cluster.get("pod", f"client-{host}")
        # Refused (TCP reset) at once, not a connect timeout.
        out = exec_in(cluster, client, f"wget -qO- http://{empty}/ 2>&1; true")
        assert "refused" in out.lower(), out
