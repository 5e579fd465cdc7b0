"""The storage lab (tests/lab/inventory/storage.yml) as a cluster: `kfab up` of site.yml and of the storage
servers' playbook (tests/lab/playbooks/storage.yml) once, the busybox image
loaded on the VM workers, and the VMs labelled as the nodes that can mount (kfab.io/storage-mounts=true).

st1 = control plane + NFS server + iSCSI target + provisioners (container host), st2 = container worker,
st3/st4 = QEMU VM workers: only they have a kernel that mounts NFS and logs in to iSCSI (shared LAB.md).
Used by tests/lab/test_storage.py and bench/storage.py.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image
from tests.lab.site_cluster import REPO, Site

INVENTORY = REPO / "tests" / "lab" / "inventory" / "storage.yml"
STORAGE_PLAYBOOK = REPO / "tests" / "lab" / "playbooks" / "storage.yml"
VMS = ["st3", "st4"]
MOUNTS_LABEL = "kfab.io/storage-mounts"
NS = "default"
SLEEP = "trap 'exit 0' TERM; while true; do sleep 1; done"


class StorageSite(Site):
    def __init__(self):
        super().__init__(INVENTORY)
        self.kubeconfig = Path("~/.local/share/kfab/clusters/kfabstor/admin.kubeconfig").expanduser()

    def start(self, reuse: bool = False) -> "StorageSite":
        """A fresh lab and `kfab up` (reuse: a lab already up and installed, e.g. a bench after the tests)."""
        if not reuse:
            super().start()
        try:
            if not reuse:
                proc = self.kfab("up", "-i", str(self.inventory), str(STORAGE_PLAYBOOK))
                if proc.returncode != 0:
                    raise AssertionError(f"kfab up {STORAGE_PLAYBOOK.name} failed:\n{proc.stdout}{proc.stderr}")
            with tempfile.TemporaryDirectory() as tmp:
                tar = build_busybox_image(Path(tmp))
                for host in VMS:
                    self.load_image(host, tar)
            for host in VMS:
                self.kubectl("label", "node", host, f"{MOUNTS_LABEL}=true", "--overwrite")
        except BaseException:
            if not reuse:
                self.stop()
            raise
        return self

    def load_image(self, host: str, tar: Path, timeout: float = 240) -> None:
        """`podman load` the tar on a VM. Under CI load a TCG guest has missed ARP for seconds (ssh: No route to
        host) right after `kfab up`: connection failures (ssh's exit 255) are retried; a VM that stays away
        fails with its QEMU state and console tail, so the next failure says what the guest did."""
        deadline = time.monotonic() + timeout
        while True:
            with open(tar, "rb") as f:
                proc = subprocess.run(self.lab.lab.ssh_command(host) + ["podman load -q"], stdin=f,
                                      capture_output=True, timeout=300)
            if proc.returncode == 0:
                return
            if proc.returncode != 255 or time.monotonic() > deadline:
                raise AssertionError(f"podman load on {host} failed (exit {proc.returncode}): "
                                     f"{proc.stderr.decode(errors='replace').strip()}\n{self.vm_state(host)}")
            time.sleep(2)

    def vm_state(self, host: str, lines: int = 40) -> str:
        from kfab.lab import vm
        spec = self.lab.lab.spec
        console = vm.vm_dir(spec, host) / "console.log"
        tail = console.read_text(errors="replace").splitlines()[-lines:] if console.exists() else ["(no console log)"]
        return f"VM {host}: QEMU running={vm.running(spec, host)}; console tail:\n" + "\n".join(tail)

    def get(self, kind: str, name: str, namespace: str | None = NS) -> dict:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        return json.loads(self.kubectl(*args).stdout)

    def apply(self, *objects: dict) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def exec(self, pod: str, cmd: str, timeout: float = 120) -> str:
        return self.kubectl("exec", "-n", NS, pod, "--", "sh", "-c", cmd, timeout=timeout).stdout

    def events(self, pod: str) -> list[dict]:
        out = self.kubectl("get", "events", "-n", NS, "--field-selector", f"involvedObject.name={pod}", "-o", "json")
        return json.loads(out.stdout)["items"]

    def running(self, name: str) -> dict | None:
        proc = self.kubectl("get", "pod", "-n", NS, name, "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        pod = json.loads(proc.stdout)
        st = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])
        return pod if st.get("phase") == "Running" and ready else None


def pod_spec(command: str, volumes: list[dict], **extra) -> dict:
    """A busybox pod for the VM workers mounting each volume at /<name>."""
    return {"nodeSelector": {MOUNTS_LABEL: "true"}, "terminationGracePeriodSeconds": 0, "volumes": volumes,
            "containers": [{"name": "app", "image": BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", command],
                            "volumeMounts": [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in volumes]}],
            **extra}


def pod(name: str, spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def claim(name: str, storage_class: str, mode: str = "ReadWriteOnce", size: str = "64Mi") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS},
            "spec": {"storageClassName": storage_class, "accessModes": [mode],
                     "resources": {"requests": {"storage": size}}}}


def poll(check, timeout: float, interval: float = 0.2):
    """check() until truthy; None after timeout (benchmarks report, tests use node_cluster.wait_for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    return None
