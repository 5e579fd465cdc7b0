"""Real workers behind the API's virtual IP (issue 15), on tests/lab/test_up_ha.py's cluster (which collects these
tests, after its own): ha4 and ha5 run the node agent, proxy and DNS, which reach the API through the VIP only.

- The VIP holder dies: the workers' heartbeats resume through the VIP on the new holder (before the node-monitor
  grace period runs out, so both Nodes stay Ready, in five runs of six: printed) and no pod is evicted; a
  Deployment scaled during the outage converges with its new pods started on the workers, and a Service made
  after the fault answers from every worker (its proxy and DNS watches resumed through the VIP too).
- A worker dies (power cut): its pods run on the other one, the stages of that path timed from the API (Sampler);
  a worker frozen for less than the grace period keeps its pods.

Figures are printed (no test asserts a time); bench/node_loss.py holds them side by side with other settings."""

from __future__ import annotations

import datetime
import json
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import pytest
from kubernetes import client

from tests.lab.ha_failover import Writer, api_client, outage, power_on, vip_holders, wait_api_ready
from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
from tests.waiting import wait_until

KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabha/admin.kubeconfig").expanduser()
CONTROL_PLANE = {"ha1": "10.87.0.11", "ha2": "10.87.0.12", "ha3": "10.87.0.13"}
WORKERS = {"ha4": "10.87.0.14", "ha5": "10.87.0.15"}
VIP = "10.87.0.100"
NAMESPACE = "ha-workers"
# kfab up's defaults (role control-plane), which the blip must stay under and the eviction follows.
GRACE_PERIOD, UNREACHABLE_TOLERATION = 10.0, 3.0
BLIP = 4.0   # seconds between `kfab lab pause` and `kfab lab unpause` returning


def web(name: str, replicas: int) -> dict:
    """busybox httpd pods answering with their name, Ready by an HTTP probe (as tests/lab/test_lifecycle_cluster)."""
    script = "mkdir -p /www && echo $HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"
    container = {"name": "web", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", script], "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container], "terminationGracePeriodSeconds": 2}}}}


def service(name: str, node_port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "NodePort", "selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": 8080, "nodePort": node_port}]}}


def is_ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def ready_status(obj: dict) -> str:
    return next((c.get("status") for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Ready"), "")


def wall(ts: str | None) -> float | None:
    if not ts:
        return None
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


class Cluster:
    """The admin's API through one address (the VIP, or one control-plane host), as plain dicts."""

    def __init__(self, server: str | None = None, timeout: float = 5.0):
        self.api = api_client(KUBECONFIG, server)
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None,
             content_type: str = "application/json") -> dict:
        """One request (kubernetes client 37's param_serialize/call_api); ApiException on an error status."""
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        _, url, headers, body, _ = self.api.param_serialize(method, path, header_params=headers, body=body,
                                                            auth_settings=["BearerToken"])
        resp = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=self.timeout)
        data = resp.read()
        if not 200 <= resp.status < 300:
            raise client.ApiException(status=resp.status, reason=data.decode(errors="replace")[:300])
        return json.loads(data) if data else {}

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def send(self, method: str, path: str, body: dict, content_type: str = "application/json") -> dict:
        return self.call(method, path, body, content_type)

    def pods(self, app: str) -> list[dict]:
        return self.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app%3D{app}")["items"]

    def live_pods(self, app: str) -> list[dict]:
        return [p for p in self.pods(app) if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self, app: str) -> list[dict]:
        return [p for p in self.live_pods(app) if is_ready(p)]

    def nodes(self) -> dict[str, dict]:
        return {n["metadata"]["name"]: n for n in self.get("/api/v1/nodes")["items"]}

    def lease_renewals(self) -> dict[str, float]:
        leases = self.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")["items"]
        return {le["metadata"]["name"]: wall(le["spec"].get("renewTime")) or 0.0 for le in leases
                if le["metadata"]["name"] in WORKERS}

    def apply(self, obj: dict) -> None:
        """Create `obj`, after deleting one of that name (a kept lab's earlier run) and waiting for its pods to go."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        base = (f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments" if kind == "Deployment"
                else f"/api/v1/namespaces/{NAMESPACE}/services")
        self.delete(f"{base}/{name}")
        if kind == "Deployment":
            wait_until(f"the pods of an earlier {name} gone", lambda: not self.pods(name), timeout=120)
        self.send("POST", base, obj)

    def scale(self, name: str, replicas: int) -> None:
        self.send("PATCH", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}/scale",
                  {"spec": {"replicas": replicas}}, "application/merge-patch+json")

    def delete(self, path: str) -> None:
        try:
            self.call("DELETE", path)
        except client.ApiException as e:
            if e.status != 404:
                raise


class Sampler:
    """Polls nodes, the workers' Leases and the pods of one app every `every` s through one API address, and
    remembers what it saw: when (monotonic) each worker's Lease renewal and Ready status changed, and every pod's
    Ready status and phase over time. Failed polls (the address' API down) are counted, not fatal."""

    def __init__(self, cluster: Cluster, app: str, every: float = 0.25):
        self.cluster, self.app, self.every = cluster, app, every
        self.renewals: dict[str, list[tuple[float, float]]] = {w: [] for w in WORKERS}  # (seen at, renewTime)
        self.node_status: dict[str, list[tuple[float, str]]] = {w: [] for w in WORKERS}
        self.taints: dict[str, list[tuple[float, list]]] = {w: [] for w in WORKERS}
        self.pods: dict[str, list[tuple[float, dict]]] = {}  # pod name -> (seen at, summary) on each change
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _record(self, series: list, now: float, value) -> None:
        if not series or series[-1][1] != value:
            series.append((now, value))

    def _poll(self) -> None:
        now = time.monotonic()
        for name, renew in self.cluster.lease_renewals().items():
            self._record(self.renewals[name], now, renew)
        for name, node in self.cluster.nodes().items():
            if name in WORKERS:
                self._record(self.node_status[name], now, ready_status(node))
                self._record(self.taints[name], now, sorted(f"{t['key']}:{t['effect']}"
                                                             for t in node["spec"].get("taints") or []))
        for pod in self.cluster.pods(self.app):
            meta, status = pod["metadata"], pod.get("status") or {}
            summary = {"node": pod["spec"].get("nodeName"), "phase": status.get("phase"),
                       "ready": ready_status(pod), "deleting": bool(meta.get("deletionTimestamp"))}
            self._record(self.pods.setdefault(meta["name"], []), now, summary)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll()
            except Exception:  # noqa: BLE001 - the API through this address is down for a while: keep polling
                self.failures += 1
            self._stop.wait(self.every)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def first(self, series: list[tuple[float, object]], after: float, test) -> float | None:
        """Seconds from `after` to the first sample after it that passes `test`."""
        return next((at - after for at, value in series if at > after and test(value)), None)

    def heartbeat_resumed(self, worker: str, t0: float, wall0: float) -> float | None:
        """Seconds from the fault to seeing the first Lease renewal the worker made after it."""
        return self.first(self.renewals[worker], t0, lambda renew: renew > wall0)

    def longest_renewal_gap(self, worker: str, since: float) -> float:
        seen = [at for at, _ in self.renewals[worker] if at >= since]
        return max((b - a for a, b in zip(seen, seen[1:])), default=0.0)

    def not_ready_nodes(self, since: float) -> dict[str, list[tuple[float, str]]]:
        return {w: [(round(at - since, 2), s) for at, s in series if at > since and s != "True"]
                for w, series in self.node_status.items() if any(at > since and s != "True" for at, s in series)}

    def not_ready_pods(self, since: float) -> dict[str, list[tuple[float, dict]]]:
        """Pods seen not Ready after `since` while not being deleted, having been Ready before."""
        out = {}
        for name, series in self.pods.items():
            was_ready = False
            for at, summary in series:
                if summary["ready"] == "True":
                    was_ready = True
                elif was_ready and at > since and not summary["deleting"]:
                    out.setdefault(name, []).append((round(at - since, 2), summary))
        return out


def died_at(host: str) -> tuple[float, float]:
    """When the lab host's power was cut, as (wall clock, this process' monotonic clock): Podman's record of the
    container's end. `kfab lab stop --kill` returns up to ~20 s after it on a loaded machine (its podman calls),
    so figures start here."""
    out = subprocess.run(["podman", "inspect", host, "--format", "{{.State.FinishedAt}}"], capture_output=True,
                         text=True, check=True, timeout=60).stdout.strip()
    day, clock = out.split()[:2]
    whole, _, fraction = clock.partition(".")
    stamp = datetime.datetime.fromisoformat(f"{day}T{whole}+00:00").timestamp() + float(f"0.{fraction or 0}")
    return stamp, stamp - (time.time() - time.monotonic())


def pod_events(cluster: Cluster, names: list[str]) -> list[str]:
    events = cluster.get(f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    return [f"{e.get('lastTimestamp') or e.get('eventTime')} {e['involvedObject'].get('name')} {e.get('reason')}: "
            f"{e.get('message')}" for e in events if e["involvedObject"].get("name") in names]


def http_answer(address: str, port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=3) as resp:
            return resp.read().decode().strip()
    except OSError:
        return ""


def resolves(worker: str, name: str) -> str:
    """The worker's cluster DNS answer (A record) for `name`, or ''."""
    query = dns.message.make_query(name, "A")
    try:
        answer = dns.query.udp(query, WORKERS[worker], timeout=2)
    except (OSError, dns.exception.DNSException):
        return ""
    return next((rr.address for rrset in answer.answer for rr in rrset if hasattr(rr, "address")), "")


@pytest.fixture(scope="module")
def workers(ha_lab):
    """The busybox image on both workers (no registry in this lab), the test namespace, and the admin's API
    through the VIP."""
    with tempfile.TemporaryDirectory() as tmp:
        tar = build_busybox_image(Path(tmp))
        for host in WORKERS:
            with open(tar, "rb") as f:
                subprocess.run(ha_lab.ssh_command(host) + ["podman load -q"], stdin=f, check=True,
                               capture_output=True, timeout=300)
    cluster = Cluster()
    wait_until("both workers Ready", lambda: all(is_ready(n) for name, n in cluster.nodes().items()
                                                 if name in WORKERS) and set(WORKERS) <= set(cluster.nodes()),
               timeout=120, retry_on=(Exception,))
    try:
        cluster.send("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    except client.ApiException as e:
        if e.status != 409:
            raise
    return cluster


def test_workers_reach_the_api_only_through_the_vip(ha_lab, workers):
    for host in WORKERS:
        for conf in ("node", "proxy", "dns", "ingress"):
            out = ha_lab.ssh(host, f"grep 'server:' /etc/kfab/{conf}.kubeconfig", timeout=60).stdout
            assert out.split() == ["server:", f"https://{VIP}:6443"], f"{host} {conf}.kubeconfig: {out}"
        # every open connection of the worker to an API server is to the VIP
        conns = ha_lab.ssh(host, "ss -Htn state established '( dport = :6443 )'", timeout=60).stdout.split("\n")
        peers = {line.split()[-1].rsplit(":", 1)[0] for line in conns if line.strip()}
        assert peers == {VIP}, f"{host} talks to {peers}"


def spread_over_workers(cluster: Cluster, app: str, replicas: int) -> None:
    """`replicas` Ready pods of `app`, on both workers."""
    wait_until(f"{replicas} {app} pods Ready on both workers", lambda: len(pods := cluster.ready_pods(app)) == replicas
               and {p["spec"]["nodeName"] for p in pods} == set(WORKERS), timeout=180, retry_on=(Exception,))


def test_workers_stay_ready_through_a_vip_holder_power_cut(ha_lab, workers):
    """The VIP holder host is killed; the workers' nodes stay Ready, a Deployment scaled during the outage
    converges on the workers, and a Service created after the fault answers from every worker."""
    cluster = workers
    cluster.apply(web("through", 2))
    spread_over_workers(cluster, "through", 2)
    before = {p["metadata"]["uid"] for p in cluster.live_pods("through")}
    victim = wait_until("one VIP holder", lambda: (h := vip_holders(ha_lab, list(CONTROL_PLANE), VIP))
                        and len(h) == 1 and h[0], timeout=30)
    survivor = next(h for h in CONTROL_PLANE if h != victim)
    leaders = {name: workers.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")["spec"]
               .get("holderIdentity", "").split("_")[0] for name in ("kfab-controller-manager", "kfab-scheduler")}
    scaled: dict[str, float] = {}

    def scale_during_outage(t0: float) -> None:
        deadline = t0 + 60
        while time.monotonic() < deadline:
            try:
                Cluster(timeout=2).scale("through", 4)
                scaled["at"] = time.monotonic() - t0
                return
            except Exception:  # noqa: BLE001 - the VIP has no holder yet
                time.sleep(0.2)

    # The sampler reads through a surviving host's own API server: the VIP is the thing being broken.
    with Sampler(Cluster(f"https://{CONTROL_PLANE[survivor]}:6443", timeout=2), "through") as sampler:
        time.sleep(3)
        writes_ns = f"ha-workers-writes-{int(time.time())}"   # the writer's names start at w-0 each run
        cluster.send("POST", "/api/v1/namespaces", {"metadata": {"name": writes_ns}})
        with Writer(api_client(KUBECONFIG), writes_ns) as writer:
            marks: dict[str, float] = {}

            def power_cut() -> None:
                marks["t0"], marks["wall0"] = time.monotonic(), time.time()
                ha_lab.stop(victim, kill=True)
                threading.Thread(target=scale_during_outage, args=(marks["t0"],), daemon=True).start()

            try:
                writes = outage(writer, power_cut)
                wall0, t0 = died_at(victim)
                command = t0 - marks["t0"]
                wait_until("both workers' heartbeats through the new holder", lambda: all(
                    sampler.heartbeat_resumed(w, t0, wall0) is not None for w in WORKERS), timeout=60)
                wait_until("the scale accepted", lambda: "at" in scaled, timeout=60)
                cluster.apply(service("through", 30871))
                spread_over_workers(cluster, "through", 4)
                wait_until("the Service answering from every worker", lambda: all(
                    http_answer(addr, 30871).startswith("through-") for addr in WORKERS.values()), timeout=60)
                cluster_ip = cluster.get(f"/api/v1/namespaces/{NAMESPACE}/services/through")["spec"]["clusterIP"]
                wait_until("the Service's name in every worker's DNS", lambda: all(
                    resolves(w, f"through.{NAMESPACE}.svc.cluster.local") == cluster_ip for w in WORKERS),
                    timeout=60)
                time.sleep(GRACE_PERIOD)   # past the grace period after the outage: a late NotReady shows now
            finally:
                power_on(ha_lab, victim)
        assert writer.lost() == [], writer.lost()
        resumed = {w: round(sampler.heartbeat_resumed(w, t0, wall0), 2) for w in WORKERS}
        gaps = {w: round(sampler.longest_renewal_gap(w, t0 - 3), 2) for w in WORKERS}
        print(f"VIP holder {victim} killed (controller-manager led by {leaders['kfab-controller-manager']}, "
              f"scheduler by {leaders['kfab-scheduler']}; the power cut {command:.2f} s after `kfab lab stop --kill` "
              f"began): writes through the VIP again {writes - command:.2f} s after the cut ({writes:.2f} s after "
              f"the command began); "
              f"node heartbeats resumed {resumed} s after the cut (longest gap between renewals seen {gaps} s, "
              f"grace period {GRACE_PERIOD:.0f} s); scale accepted {scaled['at'] - command:.2f} s after the cut; "
              f"sampler's failed polls {sampler.failures}")
        not_ready_pods, not_ready_nodes = sampler.not_ready_pods(t0), sampler.not_ready_nodes(t0)
        if not_ready_nodes or not_ready_pods:
            # Seen once in six runs (issue 15, open): the holder was also the etcd leader, the VIP moved 10.2 s
            # after the cut (etcd had a leader again after 2 s; the survivor's kfab vip took the Lease 8 s later),
            # the workers' heartbeats missed the 10 s grace period, and the node lifecycle controller marked both
            # Nodes Unknown and their pods not Ready for ~1 s - the "pods briefly not Ready during a failover" -
            # evicting none (every node down at once: full-disruption mode, and the 3 s toleration).
            print(f"Nodes not Ready after the fault: {not_ready_nodes}; pods not Ready: {not_ready_pods}\n"
                  + "\n".join(pod_events(cluster, list(not_ready_pods))))
    assert before <= {p["metadata"]["uid"] for p in cluster.live_pods("through")}, "a pod was evicted"
    wait_api_ready(ha_lab, victim)
    cluster.delete(f"/api/v1/namespaces/{NAMESPACE}/services/through")
    cluster.delete(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/through")


def node_loss_stages(sampler: Sampler, lost: str, t0: float, old: set[str]) -> dict[str, float | None]:
    """When (s after the power cut) each stage of the node-loss path was first seen through the API: for the lost
    node's pods (`old`) the first one, for their replacements (pods first seen after the cut) the last one."""
    def old_pod(test) -> float | None:
        times = [at - t0 for name in old for at, s in sampler.pods.get(name, []) if at > t0 and test(s)]
        return min(times) if times else None

    new = [name for name, series in sampler.pods.items() if series[0][0] > t0]

    def all_new(test) -> float | None:
        times = [next((at - t0 for at, s in sampler.pods[name] if test(s)), None) for name in new]
        return max(times) if times and None not in times else None

    stages = {
        "node Unknown": sampler.first(sampler.node_status[lost], t0, lambda s: s == "Unknown"),
        "unreachable taint": sampler.first(sampler.taints[lost], t0,
                                           lambda t: "node.kubernetes.io/unreachable:NoExecute" in t),
        "pods marked not Ready": old_pod(lambda s: s["ready"] != "True" and not s["deleting"]),
        "pods evicted": old_pod(lambda s: s["deleting"]),
        "replacements created": all_new(lambda s: True),
        "replacements scheduled": all_new(lambda s: bool(s["node"])),
        "replacements Running": all_new(lambda s: s["phase"] == "Running"),
        "replacements Ready": all_new(lambda s: s["ready"] == "True"),
    }
    return {k: (round(v, 2) if v is not None else None) for k, v in stages.items()}


def test_a_frozen_worker_keeps_its_pods_and_a_dead_ones_run_elsewhere(ha_lab, workers):
    cluster = workers
    cluster.apply(web("moved", 4))
    spread_over_workers(cluster, "moved", 4)
    uids = {p["metadata"]["uid"] for p in cluster.live_pods("moved")}
    lost = "ha5"

    # A blip: ha5 frozen (kfab lab pause) for a few seconds keeps its pods. The freeze is timed from the pause
    # command's start to the unpause command's end (each takes 1-3 s on a loaded machine): what the grace period
    # must absorb is that plus the time since the host's last renewal.
    with Sampler(cluster, "moved") as sampler:
        time.sleep(1)
        t0 = time.monotonic()
        ha_lab.pause(lost)
        try:
            time.sleep(BLIP)
        finally:
            ha_lab.unpause(lost)
        frozen = time.monotonic() - t0
        # past the grace period and the toleration after the freeze began: an eviction would have happened
        time.sleep(max(0.0, GRACE_PERIOD + UNREACHABLE_TOLERATION + 5 - frozen))
    gap = sampler.longest_renewal_gap(lost, t0 - 3)
    print(f"{lost} frozen {frozen:.1f} s: longest gap between its renewals seen {gap:.2f} s (grace period "
          f"{GRACE_PERIOD:.0f} s); Ready other than True seen: {sampler.not_ready_nodes(t0)}")
    pods = cluster.pods("moved")
    assert {p["metadata"]["uid"] for p in pods} == uids, "a pod was replaced after a blip"
    assert not any(p["metadata"].get("deletionTimestamp") for p in pods)

    # A power cut: its pods run on the other worker.
    old = {p["metadata"]["name"] for p in cluster.live_pods("moved") if p["spec"]["nodeName"] == lost}
    with Sampler(cluster, "moved", every=0.2) as sampler:
        time.sleep(1)
        began = time.monotonic()
        ha_lab.stop(lost, kill=True)
        wall0, t0 = died_at(lost)
        last_renewal = max((at for at, renew in sampler.renewals[lost] if renew <= wall0), default=began)
        wait_until("4 moved pods Ready without the lost worker", lambda: len(pods := cluster.ready_pods("moved")) == 4
                   and all(p["spec"]["nodeName"] != lost for p in pods), timeout=120, interval=0.1,
                   retry_on=(Exception,))
        took = time.monotonic() - t0
        time.sleep(1)
    stages = node_loss_stages(sampler, lost, t0, old)
    print(f"node loss -> {len(old)} pods Ready elsewhere: {took:.1f} s after the power cut (which came "
          f"{t0 - began:.1f} s after `kfab lab stop --kill` began; its last renewal seen {t0 - last_renewal:.1f} s "
          f"before; grace {GRACE_PERIOD:.0f} s, toleration {UNREACHABLE_TOLERATION:.0f} s); stages (s after the "
          f"cut): {json.dumps(stages)}")

    # The worker comes back with its disk: the replaced pods are stopped and their objects go; no duplicates.
    with Sampler(cluster, "moved") as sampler:
        t1 = time.monotonic()
        power_on(ha_lab, lost)
        wait_until(f"{lost} Ready again", lambda: is_ready(cluster.nodes()[lost]), timeout=180, retry_on=(Exception,))
        wait_until("the replaced pods gone", lambda: not old & {p["metadata"]["name"] for p in cluster.pods("moved")},
                   timeout=120, retry_on=(Exception,))
        wait_until("4 moved pods Ready, no duplicate", lambda: len(cluster.pods("moved")) == 4
                   and len(cluster.ready_pods("moved")) == 4, timeout=60, retry_on=(Exception,))
        time.sleep(3)
    left = ha_lab.ssh(lost, "podman pod ps --format '{{.Labels}}'", timeout=60).stdout
    assert not any(name in left for name in old), left
    not_ready = sampler.not_ready_pods(t1)
    if not_ready:
        print(f"pods not Ready for a while as {lost} came back: {not_ready}\n"
              + "\n".join(pod_events(cluster, list(not_ready))))
    cluster.delete(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/moved")


__all__ = ["workers", "test_workers_reach_the_api_only_through_the_vip",
           "test_workers_stay_ready_through_a_vip_holder_power_cut",
           "test_a_frozen_worker_keeps_its_pods_and_a_dead_ones_run_elsewhere"]
