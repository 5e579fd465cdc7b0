"""Resource metrics and autoscaling on the whole site (the session's `site`, installed by `kfab up`), checked
against what the worker hosts really use: `kubectl top nodes` beside each worker's own cgroup counters read from
this machine over the same window; `kubectl top pods -A` listing the running pods with a CPU-burning one busy; a
HorizontalPodAutoscaler (autoscaling/v2, CPU utilization of the pods' requests, short windows in spec.behavior)
scaling a CPU-burning Deployment up on the workers and back down once its pods stop burning.

The burner is limited to 150m a pod so that the module costs the shared machine at most ~0.5 core for ~3 min,
and its namespace goes at the end of the module."""

from __future__ import annotations

import bisect
import datetime
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
from tests.waiting import wait_until

pytestmark = pytest.mark.timeout(2400)

NS = "autoscale"
IDLE_NS = "default"   # a sleeping pod beside the burner
WORKERS = ["u2", "u3"]
RESOLUTION = 15.0   # the API server's --metric-resolution (its default, as k3s sets metrics-server's)
# the burner's loop runs while LOAD is "on"; `kubectl set env ... LOAD=off` rolls out idle pods
BURN = 'if [ "$LOAD" = on ]; then while :; do :; done; fi; exec sleep 100000'


def burner_deployment(image: str) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burn", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "burn"}},
                 "template": {"metadata": {"labels": {"app": "burn"}}, "spec": {
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "burn", "image": image, "command": ["sh", "-c", BURN],
                                     "env": [{"name": "LOAD", "value": "on"}],
                                     "resources": {"requests": {"cpu": "50m", "memory": "16Mi"},
                                                   "limits": {"cpu": "150m", "memory": "32Mi"}}}]}}}}


HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "burn", "namespace": NS},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
             "minReplicas": 1, "maxReplicas": 3,
             "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                 "type": "Utilization", "averageUtilization": 50}}}],
             # upstream waits 5 minutes before scaling down; the lab has no time for that
             "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0,
                                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}},
}


@pytest.fixture(scope="module")
def burner(site):
    """Namespace `autoscale` with the burner Deployment (1 replica, busy), its pod running on a worker."""
    with tempfile.TemporaryDirectory(prefix="kfab-autoscale-") as tmp:
        build_busybox_image(Path(tmp))
    proc = site.kfab("image", "push", "-i", str(site.inventory), BUSYBOX_IMAGE, timeout=300)
    assert proc.returncode == 0, proc.stderr
    site.kubectl("create", "namespace", NS, check=False)
    image = proc.stdout.strip()
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump(burner_deployment(image)))
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "idle", "namespace": IDLE_NS},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "idle", "image": image, "command": ["sleep", "100000"]}]}}))
    wait_until("the burner pod running", lambda: len(_running_pods(site, "app=burn")) == 1, 240, 0.5,
               retry_on=(Exception,))
    wait_until("the idle pod running", lambda: _running_pods(site, namespace=IDLE_NS), 120, 0.5,
               retry_on=(Exception,))
    yield
    site.kubectl("delete", "namespace", NS, "--wait=false", check=False)
    site.kubectl("delete", "pod", "idle", "-n", IDLE_NS, "--wait=false", check=False)


def _key(obj: dict) -> tuple[str, str]:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def _running_pods(site, selector: str = "", namespace: str = NS) -> list[dict]:
    args = ["get", "pods", "-o", "json", "--field-selector", "status.phase=Running"]
    args += ["-A"] if namespace == "" else ["-n", namespace]
    args += ["-l", selector] if selector else []
    return [p for p in json.loads(site.kubectl(*args).stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


# --- what the hosts use, read from this machine ------------------------------------------------------

def _host_cgroup(host: str, controller: str) -> Path:
    """The lab host's own cgroup directory (its init's, as seen from this machine) for a v1 controller."""
    pid = subprocess.run(["podman", "inspect", host, "--format", "{{.State.Pid}}"], capture_output=True,
                         text=True, check=True).stdout.strip()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            path = path.strip("/").removesuffix("init.scope").rstrip("/")  # systemd's own scope: the host is its parent
            return Path("/sys/fs/cgroup") / controller / path
    raise AssertionError(f"{host}: no {controller} cgroup in /proc/{pid}/cgroup")


def _working_set(memory: Path) -> int:
    stat = dict(line.split() for line in (memory / "memory.stat").read_text().splitlines())
    return int((memory / "memory.usage_in_bytes").read_text()) - int(stat["total_inactive_file"])


def _sample_cpu(cpuacct: dict[str, Path], seconds: float, series: dict | None = None
                ) -> dict[str, list[tuple[float, float]]]:
    """(time, cumulative CPU seconds) of each host's cgroup every 0.2 s for `seconds`, added to `series`."""
    series = series if series is not None else {h: [] for h in cpuacct}
    end = time.time() + seconds
    while time.time() < end:
        for host, path in cpuacct.items():
            series[host].append((time.time(), int((path / "cpuacct.usage").read_text()) / 1e9))
        time.sleep(0.2)
    return series


def _at(series: list[tuple[float, float]], t: float) -> float:
    """The counter at time t, linear between the two samples around it."""
    i = bisect.bisect_left([s[0] for s in series], t)
    assert 0 < i < len(series), f"{t} outside the sampled {series[0][0]}..{series[-1][0]}"
    (t0, v0), (t1, v1) = series[i - 1], series[i]
    return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


def _cores_over(series: list[tuple[float, float]], end: float, window: float) -> float:
    return (_at(series, end) - _at(series, end - window)) / window


def _quantity_cores(text: str) -> float:
    return int(text[:-1]) / 1e9 if text.endswith("n") else int(text[:-1]) / 1e3 if text.endswith("m") else float(text)


def _ki(text: str) -> int:
    assert text.endswith("Ki"), text
    return int(text[:-2]) * 1024


def _node_metrics(site, name: str) -> dict:
    return json.loads(site.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{name}").stdout)


def _epoch(rfc3339: str) -> float:
    return datetime.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def test_kubectl_top_nodes_shows_what_each_worker_host_uses(site, burner):
    wait_until("kubectl top nodes with both workers",
               lambda: all(w in site.kubectl("top", "nodes", check=False).stdout for w in WORKERS), 120, 1)
    cpuacct = {h: _host_cgroup(h, "cpuacct") for h in WORKERS}
    memory = {h: _host_cgroup(h, "memory") for h in WORKERS}
    # two scrapes' worth of counters: the window the API answers with lies inside what was sampled
    series = _sample_cpu(cpuacct, 2 * RESOLUTION + 4)
    rows = {}
    for host in WORKERS:
        metrics = _node_metrics(site, host)
        host_memory = _working_set(memory[host])
        served = _quantity_cores(metrics["usage"]["cpu"])
        window = float(metrics["window"].rstrip("s"))
        # the timestamp is whole seconds (metav1.Time): the sample was taken within the second after it
        stamp = _epoch(metrics["timestamp"])
        if stamp + 1.5 > series[host][-1][0]:   # scraped after the sampling ended: sample past it
            _sample_cpu(cpuacct, stamp + 1.5 - series[host][-1][0], series)
        measured = [_cores_over(series[host], stamp + f / 10, window) for f in range(10)]
        low, high = min(measured), max(measured)
        rows[host] = (served, low, high, _ki(metrics["usage"]["memory"]), host_memory)
        print(f"{host}: served {served:.3f} cores over {window:.1f}s, its cgroup {low:.3f}-{high:.3f} cores; "
              f"memory served {_ki(metrics['usage']['memory']) >> 20} MiB, its cgroup now {host_memory >> 20} MiB")
        assert low * 0.9 - 0.02 <= served <= high * 1.1 + 0.02, (host, rows[host])
        assert abs(_ki(metrics["usage"]["memory"]) - host_memory) <= max(0.1 * host_memory, 24 << 20), rows[host]

    # The pods are inside their host's cgroup: a node never uses less than its pods together.
    pods = json.loads(site.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/pods").stdout)["items"]
    by_node = {_key(p): p["spec"].get("nodeName") for p in _running_pods(site, namespace="")}
    for host in WORKERS:
        summed = sum(_quantity_cores(c["usage"]["cpu"]) for p in pods for c in p["containers"]
                     if by_node.get(_key(p)) == host)
        assert summed <= rows[host][2] * 1.1 + 0.05, (host, summed, rows[host])

    # What kubectl prints is what the API served (read again if a scrape landed in between).
    for _ in range(5):
        before = {h: _node_metrics(site, h) for h in WORKERS}
        table = site.kubectl("top", "nodes", "--no-headers").stdout
        if before == {h: _node_metrics(site, h) for h in WORKERS}:
            break
    printed = {line.split()[0]: line.split() for line in table.splitlines()}
    for host in WORKERS:
        cpu_m, memory_mi = int(printed[host][1].rstrip("m")), int(printed[host][3].rstrip("Mi"))
        assert abs(cpu_m - _quantity_cores(before[host]["usage"]["cpu"]) * 1000) <= 1, (printed[host], before[host])
        assert abs(memory_mi - (_ki(before[host]["usage"]["memory"]) >> 20)) <= 1, (printed[host], before[host])


def test_kubectl_top_pods_lists_the_running_pods_and_the_busy_one_burns(site, burner):
    def listed() -> dict[tuple[str, str], list[str]]:
        rows = site.kubectl("top", "pods", "-A", "--no-headers").stdout.splitlines()
        return {(r.split()[0], r.split()[1]): r.split()[2:] for r in rows}

    def settled(pods: dict) -> bool:
        # pods scraped twice at least (running longer than two resolutions) are all listed
        old = [p for p in _running_pods(site, namespace="")
               if time.time() - _epoch(p["status"]["startTime"]) > 2 * RESOLUTION + 5]
        mine = (IDLE_NS, "idle") in pods and any(key[0] == NS for key in pods)
        return mine and all(_key(p) in pods for p in old)

    top = wait_until("kubectl top pods -A listing every running pod", lambda: (lambda t: settled(t) and t)(listed()),
                     90, 2, retry_on=(Exception,))
    burn = [(key, row) for key, row in top.items() if key[0] == NS]
    assert len(burn) == 1, top
    cpu_m, idle_m = int(burn[0][1][0].rstrip("m")), int(top[(IDLE_NS, "idle")][0].rstrip("m"))
    print(f"kubectl top pods -A: burner {cpu_m}m (limit 150m), the sleeping pod {idle_m}m; all: {top}")
    assert 20 <= cpu_m <= 165, burn            # spinning within its 150m limit (a loaded machine gives less)
    assert idle_m <= 5 and idle_m * 4 < cpu_m, top

    containers = site.kubectl("top", "pods", "-n", NS, "--containers", "--no-headers").stdout.split()
    assert containers[:2] == [burn[0][0][1], "burn"], containers


def _replicas(site) -> int:
    return json.loads(site.kubectl("get", "deployment", "burn", "-n", NS, "-o", "json").stdout)["spec"]["replicas"]


def test_an_hpa_scales_the_burner_up_on_the_workers_and_down_when_it_stops(site, burner):
    started = time.monotonic()
    site.kubectl("apply", "-f", "-", input=yaml.safe_dump(HPA))
    # up to 150m of a 50m request is up to 300% against 50%: 3 replicas, the maximum, whenever the loaded machine
    # gives each burner more than ~30m
    wait_until("the HPA to scale the burner to 3", lambda: _replicas(site) == 3, 240, 2, retry_on=(Exception,))
    up = time.monotonic() - started
    wait_until("3 burner pods running", lambda: len(_running_pods(site, "app=burn")) == 3, 180, 1,
               retry_on=(Exception,))
    nodes = sorted(p["spec"]["nodeName"] for p in _running_pods(site, "app=burn"))
    assert set(nodes) <= set(WORKERS), nodes
    hpa = json.loads(site.kubectl("get", "hpa", "burn", "-n", NS, "-o", "json").stdout)
    current = hpa["status"]["currentMetrics"][0]["resource"]["current"]
    assert current["averageUtilization"] > 50, hpa["status"]
    events = site.kubectl("get", "events", "-n", NS, "--field-selector", "reason=SuccessfulRescale").stdout
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above target" in events, events

    stopped = time.monotonic()
    site.kubectl("set", "env", "deployment/burn", "-n", NS, "LOAD=off")
    wait_until("the HPA to scale the idle burner back to 1", lambda: _replicas(site) == 1, 300, 2,
               retry_on=(Exception,))
    down = time.monotonic() - stopped
    wait_until("1 burner pod left", lambda: len(_running_pods(site, "app=burn")) == 1, 120, 1, retry_on=(Exception,))
    events = site.kubectl("get", "events", "-n", NS, "--field-selector", "reason=SuccessfulRescale").stdout
    assert "New size: 1; reason: All metrics below target" in events, events
    print(f"HPA on the site: 1 -> 3 in {up:.0f}s (pods on {nodes}, {current['averageUtilization']}% of request), "
          f"3 -> 1 in {down:.0f}s after the load stopped")
