"""Install nights without a network (issue 18): `kfab bundle create` on this machine while the lab hosts are
online, then fresh hosts with no route out of their lab network (10.85, tests/lab/inventory/bundle.yml, the shape
of inventory/lab.yml: bn1 control plane + etcd + registry, bn2 and bn3 workers) install the whole site.yml from
the bundle (`kfab up --bundle`), and the quick-start demo (examples/demo/, its image from the bundle through the
cluster registry) answers: pods Running, the Service from each worker, its DNS name from a pod, the Ingress and
the LoadBalancer address from this machine. A bundle of another kfab release, or a damaged copy, stops before any
host changes; `kfab plan --bundle` after the install finds nothing to change.

The outer machine drops everything the lab's bridge would forward elsewhere, for the whole module from the fresh
hosts on; a rule ahead of it counts each attempt at a mirror (TCP 80/443) and one on this machine's side each at
the apt cache port: both stay 0. Figures (bundle size, create and install times) are printed: run with -s.

Lock: `flock -s /tmp/kfab-lab.lock flock /tmp/kfab-lab-bundle.lock` (a lab of its own)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from kfab.provision.bundle.archive import kfab_release, manifest_of, write
from tests.lab.conftest import fresh_lab
from tests.lab.offline import Cutoff, lab_bridge
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
INVENTORY = REPO / "tests" / "lab" / "inventory" / "bundle.yml"
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabbundle/admin.kubeconfig").expanduser()
DEMO = REPO / "examples" / "demo"
DEMO_IMAGE = "localhost/kfab-demo:1"         # kfab_bundle_images in bundle.yml
QUICKSTART_IMAGE = "labh1:5000/kfab-demo:1"   # what examples/demo/deployment.yaml names (the quick-start lab's)
PULLED = "bn1:5000/kfab-demo:1"              # the same image in this lab's registry, pushed there by up --bundle
WORKERS = ("bn2", "bn3")
# What a host would show of a run that changed it: its apt sources and settings, kfab's venv, systemd units.
HOST_STATE = ("ls -la --time-style=full-iso /etc/apt/sources.list.d /etc/apt/apt.conf.d /opt /etc/systemd/system; "
              "dpkg-query -W | md5sum")

pytestmark = pytest.mark.timeout(3600)   # the install itself takes minutes on a busy machine
FIGURES: dict[str, str] = {}


def figure(name: str, value: str) -> None:
    FIGURES[name] = value
    print(f"figure: {name}: {value}", flush=True)


def kfab(*args: str, timeout: float = 2400) -> subprocess.CompletedProcess:
    return subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          stdin=subprocess.DEVNULL)


def kubectl(*args: str, input: str | None = None, check: bool = True, timeout: float = 120
            ) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(KUBECONFIG), *args],
                          input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle made while the hosts are online (resolving on bn1); then the lab starts again from fresh hosts."""
    tmp = tmp_path_factory.mktemp("bundle")
    built = subprocess.run(["bash", str(DEMO / "build.sh"), DEMO_IMAGE], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    hosts = fresh_lab(INVENTORY)
    lab = next(hosts)
    path = tmp / "kfab-bundle.tar"
    try:
        started = time.monotonic()
        created = kfab("bundle", "create", "-i", str(INVENTORY), "-o", str(path))
        assert created.returncode == 0, created.stdout + created.stderr
        figure("bundle create (3 hosts' roles, the demo image)", f"{time.monotonic() - started:.1f} s, "
               f"{path.stat().st_size / 1e6:.1f} MB")
        print(created.stderr, flush=True)
        lab.lab.down()
        lab.lab.up()
        yield lab, path
    finally:
        next(hosts, None)


def other_release(path: Path, out: Path) -> Path:
    """A bundle like `path` as another kfab release would have made it (its manifest only: kfab stops there)."""
    fields = {k: v for k, v in manifest_of(path).items() if k not in ("format", "files")}
    write(out, {**fields, "kfab_release": "0.0.1"}, [])
    return out


def damaged_copy(path: Path, out: Path) -> tuple[Path, str]:
    """A copy of the bundle with one byte of its first .deb flipped; (the copy, that member's name)."""
    shutil.copyfile(path, out)
    with tarfile.open(out) as tar:
        member = next(i for i in tar.getmembers() if i.name.endswith(".deb"))
    with open(out, "r+b") as f:
        f.seek(member.offset_data + member.size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 1]))
    return out, member.name


@pytest.fixture(scope="module")
def offline_install(bundle, tmp_path_factory):
    """Everything from the fresh hosts on happens cut off: the bundles that do not fit, the install, the demo."""
    lab, path = bundle
    tmp = tmp_path_factory.mktemp("misfits")
    with Cutoff(lab_bridge("kfabbundle")) as cutoff:
        # the cut-off works: a host cannot fetch the mirror's index
        probe = lab.ssh("bn2", "timeout 20 apt-get -q update 2>&1", check=False)
        assert "Failed to fetch" in probe.stdout or probe.returncode != 0, probe.stdout
        tried = cutoff.packets()
        assert tried["mirror"] > 0, tried
        cutoff.zero()
        before = {h: lab.ssh(h, HOST_STATE).stdout for h in lab.hosts}
        misfits = {"release": (other_release(path, tmp / "old.tar"), None)}
        misfits["damaged"] = damaged_copy(path, tmp / "damaged.tar")
        refused = {what: (bad, member, kfab("up", "-i", str(INVENTORY), "--bundle", str(bad)))
                   for what, (bad, member) in misfits.items()}
        untouched = {h: lab.ssh(h, HOST_STATE).stdout == state for h, state in before.items()}
        started = time.monotonic()
        up = kfab("up", "-i", str(INVENTORY), "--bundle", str(path))
        figure("kfab up --bundle, 3 fresh hosts, no route out", f"{time.monotonic() - started:.1f} s "
               f"(load {Path('/proc/loadavg').read_text().split()[0]})")
        yield {"lab": lab, "up": up, "cutoff": cutoff, "refused": refused, "untouched": untouched, "bundle": path}


@pytest.fixture(scope="module")
def demo(offline_install):
    """examples/demo/ as the quick start applies it, with the image the bundle put in this lab's registry."""
    assert offline_install["up"].returncode == 0, "kfab up --bundle failed"
    manifests = "\n---\n".join(p.read_text() for p in sorted(DEMO.glob("*.yaml")))
    assert QUICKSTART_IMAGE in manifests
    started = time.monotonic()
    kubectl("apply", "-f", "-", input=manifests.replace(QUICKSTART_IMAGE, PULLED))
    kubectl("rollout", "status", "deployment/demo", "--timeout=600s", timeout=630)
    figure("demo applied until its 3 replicas are ready", f"{time.monotonic() - started:.1f} s")
    ip = kubectl("get", "service", "demo", "-o", "jsonpath={.spec.clusterIP}").stdout
    return offline_install["lab"], ip


def demo_pods() -> list[dict]:
    pods = json.loads(kubectl("get", "pods", "-l", "app=demo", "-o", "json").stdout)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def test_bundle_verifies(bundle):
    _, path = bundle
    started = time.monotonic()
    proc = kfab("bundle", "verify", str(path))
    figure("bundle verify", f"{time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "Debian bookworm" in proc.stdout and "1 images" in proc.stdout
    assert manifest_of(path)["images"] == [DEMO_IMAGE]


def test_a_bundle_of_another_release_or_damaged_stops_before_any_host_changes(offline_install):
    path, _, proc = offline_install["refused"]["release"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"kfab up --bundle: {path}: the bundle is for kfab release 0.0.1" in proc.stderr
    assert f"expected {kfab_release()}, found 0.0.1" in proc.stderr
    path, member, proc = offline_install["refused"]["damaged"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{path}: member '{member}' is damaged" in proc.stderr
    for _, _, proc in offline_install["refused"].values():
        assert "nothing was changed on any host" in proc.stderr and "PLAY" not in proc.stdout + proc.stderr
    assert offline_install["untouched"] == {"bn1": True, "bn2": True, "bn3": True}


def test_the_whole_site_installs_from_the_bundle_reaching_no_mirror(offline_install):
    lab, up = offline_install["lab"], offline_install["up"]
    assert up.returncode == 0, up.stdout[-6000:] + up.stderr[-6000:]
    packets = offline_install["cutoff"].packets()
    assert packets["mirror"] == 0 and packets["cache"] == 0, packets
    for host in lab.hosts:
        # apt on the hosts read the bundle's repository and nothing else
        sources = lab.ssh(host, "apt-get indextargets --format '$(SITE)' | sort -u").stdout.split()
        assert sources == ["http://10.85.0.1:3143"], (host, sources)
    for host in WORKERS:
        lab.ssh(host, "systemctl is-active kfab-node kfab-proxy kfab-dns kfab-ingress")
    lab.ssh("bn1", "systemctl is-active docker-registry")
    assert f"images in the cluster registry: {PULLED}" in up.stdout
    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    ready = {n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
    assert set(WORKERS) <= ready, ready


def test_demo_pods_run_the_image_from_the_bundle(demo):
    pods = demo_pods()
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Running"}, pods
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["image"] == PULLED, status
    assert {p["spec"]["nodeName"] for p in pods} <= set(WORKERS)


def test_demo_service_answers_from_each_worker(demo):
    lab, ip = demo
    names = {p["metadata"]["name"] for p in demo_pods()}
    for host in WORKERS:
        replies = lab.ssh(host, f"for i in $(seq 12); do curl -sS --max-time 5 http://{ip}/ || echo FAILED; done"
                          ).stdout.splitlines()
        assert replies and all(" from pod demo-" in r for r in replies), (host, replies)
        answered = {r.split(" from pod ", 1)[1].split()[0] for r in replies}
        assert answered <= names and len(answered) >= 2, (host, answered, names)


def test_demo_by_its_dns_name_from_a_pod(demo):
    pod = demo_pods()[0]["metadata"]["name"]
    proc = kubectl("exec", pod, "--", "wget", "-qO-", "http://demo.default.svc.cluster.local/", check=False)
    assert proc.returncode == 0 and " from pod demo-" in proc.stdout, proc.stdout + proc.stderr
    resolved = kubectl("exec", pod, "--", "nslookup", "demo.default.svc.cluster.local", check=False)
    ip = kubectl("get", "service", "demo", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert ip in resolved.stdout, resolved.stdout + resolved.stderr


def test_demo_ingress_and_loadbalancer_answer_from_this_machine(demo):
    def answered(url: str, *headers: str) -> bool:
        proc = subprocess.run(["curl", "-sS", "--max-time", "5", *headers, url], capture_output=True, text=True)
        return " from pod demo-" in proc.stdout

    wait_until("demo.home.arpa through the ingress on bn2", lambda: answered("http://10.85.0.12/",
               "-H", "Host: demo.home.arpa"), timeout=120, interval=2)
    lb = wait_until("demo-lb's LoadBalancer address", lambda: kubectl(
        "get", "service", "demo-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").stdout,
        timeout=120, interval=2)
    assert lb.startswith("10.85.0.24"), lb
    wait_until(f"the demo on its LoadBalancer address {lb}", lambda: answered(f"http://{lb}/"), timeout=120,
               interval=2)


def test_no_host_reached_a_mirror_while_the_demo_ran(demo, offline_install):
    packets = offline_install["cutoff"].packets()
    assert packets["mirror"] == 0 and packets["cache"] == 0, packets


def test_plan_with_the_bundle_finds_nothing_to_change(demo, offline_install):
    started = time.monotonic()
    proc = kfab("plan", "-i", str(INVENTORY), "--bundle", str(offline_install["bundle"]), "--json")
    figure("kfab plan --bundle after the install", f"{time.monotonic() - started:.1f} s")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    plan = json.loads(proc.stdout)
    assert plan["changed"] is False and set(plan["hosts"]) == {"bn1", "bn2", "bn3"}
    for name, host in plan["hosts"].items():
        assert host["stats"]["ok"] > 20 and host["stats"]["failed"] == 0, (name, host["stats"])
    packets = offline_install["cutoff"].packets()
    assert packets["mirror"] == 0 and packets["cache"] == 0, packets


def test_figures(offline_install):
    print("\n".join(f"figure: {k}: {v}" for k, v in FIGURES.items()))
