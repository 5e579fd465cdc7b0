"""The demo app (examples/demo/) on the cluster `kfab up` installed (session fixture `site`): its image built
here and pushed to the cluster registry, pulled by the workers; the Service answers from each worker with
replies from every pod, by its DNS name from a pod; a ConfigMap change shows after a rollout restart."""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path

import pytest
from tests.waiting import wait_until


REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo"
IMAGE = "localhost/kfab-demo:1"
LAB_IMAGE = "labh1:5000/kfab-demo:1"     # what examples/demo/deployment.yaml names (the main lab's registry)
NAMESPACE = "demo-test"


def demo_pods(site) -> list[dict]:
    pods = json.loads(site.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app=demo", "-o", "json").stdout)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def pod_of(reply: str) -> str:
    """The pod a page names: '<greeting> from pod NAME on node NODE (IP)'."""
    words = reply.split()
    return words[words.index("pod") + 1] if "pod" in words else ""


def curl_service(site, host: str, ip: str, times: int = 30) -> list[str]:
    """`times` requests to the Service from a lab host, one reply line each (one SSH session for all)."""
    out = site.ssh(host, f"for i in $(seq {times}); do curl -sS --max-time 5 http://{ip}/ || echo FAILED; done").stdout
    return out.splitlines()


@pytest.fixture(scope="module")
def demo(site):
    """The demo image pushed to the cluster registry and examples/demo/ applied in a namespace of its own."""
    built = subprocess.run(["bash", str(DEMO / "build.sh"), IMAGE], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    pushed = site.kfab("image", "push", "-i", str(site.inventory), IMAGE)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    pulled = pushed.stdout.strip()
    manifests = "\n---\n".join(p.read_text() for p in sorted(DEMO.glob("*.yaml")))
    assert LAB_IMAGE in manifests
    site.kubectl("create", "namespace", NAMESPACE)
    try:
        site.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=manifests.replace(LAB_IMAGE, pulled))
        site.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/demo", "--timeout=300s", timeout=330)
        ip = site.kubectl("get", "service", "demo", "-n", NAMESPACE, "-o", "jsonpath={.spec.clusterIP}").stdout
        yield pulled, ip
    finally:
        site.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def workers(site) -> list[str]:
    nodes = json.loads(site.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return sorted(n["metadata"]["name"] for n in nodes if not n["spec"].get("unschedulable"))


def test_demo_image_is_pushed_and_pulled_by_the_workers(site, demo):
    pulled, _ = demo
    registry = pulled.split("/", 1)[0]
    assert registry.endswith(":5000") and pulled.endswith("/kfab-demo:1")
    pods = demo_pods(site)
    assert len(pods) == 3
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["image"] == pulled, status
        # the worker the pod runs on pulled it from the cluster registry into its own Podman store
        site.ssh(pod["spec"]["nodeName"], f"podman image exists {pulled}")


def test_service_answers_from_each_worker_with_replies_from_every_pod(site, demo):
    _, ip = demo
    names = {p["metadata"]["name"] for p in demo_pods(site)}
    for worker in workers(site):
        replies = curl_service(site, worker, ip)
        assert "FAILED" not in replies, replies
        assert {pod_of(r) for r in replies} == names, (worker, replies)
        assert all(r.startswith("Hello from pod ") for r in replies), replies


def test_demo_answers_by_dns_name_from_a_pod(site, demo):
    names = {p["metadata"]["name"] for p in demo_pods(site)}
    pod = sorted(names)[0]
    for name in (f"demo.{NAMESPACE}.svc.cluster.local", "demo"):
        reply = site.kubectl("exec", "-n", NAMESPACE, pod, "--", "wget", "-qO-", f"http://{name}/").stdout
        assert pod_of(reply) in names, (name, reply)


def test_page_names_its_pod_node_and_ip(site, demo):
    for pod in demo_pods(site):
        reply = site.kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--",
                             "wget", "-qO-", "http://127.0.0.1:8080/").stdout.strip()
        assert reply == (f"Hello from pod {pod['metadata']['name']} on node {pod['spec']['nodeName']} "
                         f"({pod['status']['podIP']})")


# Last: it replaces the pods the tests above look at.
def test_configmap_change_shows_after_rollout_restart(site, demo):
    _, ip = demo
    before = {p["metadata"]["name"] for p in demo_pods(site)}
    site.kubectl("patch", "configmap", "demo", "-n", NAMESPACE, "--type", "merge",
                 "-p", '{"data": {"greeting": "Bonjour"}}')
    # the running pods read the greeting at start: nothing changes until they are replaced
    assert all(r.startswith("Hello ") for r in curl_service(site, workers(site)[0], ip, times=5))
    site.kubectl("rollout", "restart", "-n", NAMESPACE, "deployment/demo")
    site.kubectl("rollout", "status", "-n", NAMESPACE, "deployment/demo", "--timeout=300s", timeout=330)
    after = wait_until("3 new demo pods",
                       lambda: (
        names if len(names := {p["metadata"]["name"] for p in demo_pods(site)}) == 3 and not names & before
        else None), 180, 1)
    worker = workers(site)[0]
    # the service proxy drops the old pods' endpoints as they terminate
    wait_until("only new pods answering",
               lambda: all(r.startswith("Bonjour from pod ") for r in curl_service(site, worker, ip, times=10)), 60, 1)
    replies = curl_service(site, worker, ip)
    assert all(r.startswith("Bonjour from pod ") for r in replies), replies
    assert {pod_of(r) for r in replies} == after


def test_demo_answers_this_machine_by_ingress_host_and_on_its_load_balancer_address(site, demo):
    """examples/demo/ingress.yaml and loadbalancer.yaml, reached from outside the cluster as the quick start
    shows: demo.home.arpa on a worker's port 80 (kfab ingress), and the demo-lb Service's pool address."""
    names = {p["metadata"]["name"] for p in demo_pods(site)}

    def get(ip: str, host: str) -> str | None:
        try:
            conn = http.client.HTTPConnection(ip, 80, timeout=5)
            conn.request("GET", "/", headers={"Host": host})
            return conn.getresponse().read().decode().strip()
        except OSError:
            return None
    for worker in workers(site):
        ip = site.lab.hosts[worker]
        reply = wait_until(f"demo.home.arpa on {worker}", lambda ip=ip: get(ip, "demo.home.arpa"), 60)
        assert pod_of(reply) in names, reply
    address = wait_until("demo-lb's address",
                         lambda: site.kubectl(
        "get", "service", "demo-lb", "-n", NAMESPACE, "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout, 60)
    reply = wait_until(f"the demo at {address}", lambda: get(address, address), 60)
    assert pod_of(reply) in names, reply
