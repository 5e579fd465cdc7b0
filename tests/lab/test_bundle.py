"""Install nights without a network (issue 18): `kfab bundle create` on this machine while the lab hosts are
online, then fresh hosts with no route out of their lab network (10.85, tests/lab/inventory/bundle.yml: bn1
control plane + etcd + registry, bn2 worker) are installed by `kfab up --bundle`, and a pod runs from the bundled
image. The outer machine drops everything the lab's bridge would forward elsewhere; a rule ahead of it counts
each attempt at a mirror (TCP 80/443) and one on this machine's side each at the apt cache port: both stay 0.

Lock: `flock -s /tmp/kfab-lab.lock flock /tmp/kfab-lab-test_bundle.lock` (a lab of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.conftest import fresh_lab
from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
from tests.lab.offline import Cutoff, lab_bridge
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
INVENTORY = REPO / "tests" / "lab" / "inventory" / "bundle.yml"
KUBECONFIG = Path("~/.local/share/kfab/clusters/kfabbundle/admin.kubeconfig").expanduser()

pytestmark = pytest.mark.timeout(2400)   # the install itself takes minutes on a busy machine


def kfab(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle made while the hosts are online (resolving on bn1); then the lab starts again from fresh hosts."""
    tmp = tmp_path_factory.mktemp("bundle")
    build_busybox_image(tmp)
    hosts = fresh_lab(INVENTORY)
    lab = next(hosts)
    try:
        started = time.monotonic()
        created = kfab("bundle", "create", "-i", str(INVENTORY), "-o", str(tmp / "kfab-bundle.tar"))
        assert created.returncode == 0, created.stdout + created.stderr
        print(f"bundle create: {time.monotonic() - started:.1f} s\n{created.stderr}")
        lab.lab.down()
        lab.lab.up()
        yield lab, tmp / "kfab-bundle.tar"
    finally:
        next(hosts, None)


@pytest.fixture(scope="module")
def offline_install(bundle):
    lab, path = bundle
    with Cutoff(lab_bridge("kfabbundle")) as cutoff:
        # the cut-off works: a host cannot fetch the mirror's index
        probe = lab.ssh("bn2", "timeout 20 apt-get -q update 2>&1", check=False)
        assert "Failed to fetch" in probe.stdout or probe.returncode != 0, probe.stdout
        tried = cutoff.packets()
        assert tried["mirror"] > 0, tried
        cutoff.zero()
        started = time.monotonic()
        up = kfab("up", "-i", str(INVENTORY), "--bundle", str(path))
        print(f"kfab up --bundle: {time.monotonic() - started:.1f} s")
        yield lab, up, cutoff.packets()


def test_bundle_verifies(bundle):
    _, path = bundle
    proc = kfab("bundle", "verify", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "Debian bookworm" in proc.stdout and "1 images" in proc.stdout


def test_up_from_the_bundle_reaches_no_mirror(offline_install):
    lab, up, packets = offline_install
    assert up.returncode == 0, up.stdout + up.stderr
    assert packets["mirror"] == 0 and packets["cache"] == 0, packets
    # apt on the hosts read the bundle's repository and nothing else
    sources = lab.ssh("bn2", "apt-get indextargets --format '$(SITE)' | sort -u").stdout.split()
    assert sources == ["http://10.85.0.1:3143"], sources   # the bundle's repository on this machine, alone
    assert "images in the cluster registry: bn1:5000/kfab-busybox:1" in up.stdout


def test_pod_runs_from_the_bundled_image(offline_install):
    _, up, _ = offline_install
    assert up.returncode == 0
    kubectl = [str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(KUBECONFIG)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "from-bundle"},
           "spec": {"restartPolicy": "Never", "containers": [
               {"name": "main", "image": f"bn1:5000/{BUSYBOX_IMAGE.split('/', 1)[1]}",
                "command": ["sh", "-c", "echo offline-ok; sleep 600"]}]}}
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True, capture_output=True)

    def logged():
        out = subprocess.run([*kubectl, "logs", "from-bundle"], capture_output=True, text=True)
        return out.returncode == 0 and "offline-ok" in out.stdout

    wait_until("the pod from the bundled image logs offline-ok", logged, timeout=180, interval=2)
