"""The lifecycle commands on a cluster `kfab up` installed (tests/lab/inventory/ops.yml, 10.92.0.0/24): the admin
kubeconfig merged into a KUBECONFIG file; a fourth host added (`kfab add-node`) and removed again
(`kfab remove-node`, which drains first); backup -> delete -> restore; certificates rotated; an upgrade to a
genuinely new kfab wheel while a Service is probed throughout; the encryption key of Secrets rotated, and no key
in plan/up output; `kfab reset` leaves no kfab behind and a later `kfab up` works again.

One lab and one `kfab up` for the whole module (tests run in file order and build on each other). The lab's
inventory lists o4 in a group site.yml does not use, so `kfab lab up` starts it; the cluster's inventories are
written from it the way a user edits theirs: cluster.yml (o1-o3), grown.yml (o4 under workers).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.lab import at_rest
from tests.lab.node_cluster import BUSYBOX_IMAGE, build_busybox_image, wait_for
from tests.lab.site_cluster import recap

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
LAB_INVENTORY = REPO / "tests" / "lab" / "inventory" / "ops.yml"
NODE_PORT = 30992
PKI = Path("~/.local/share/kfab/clusters/kfabops/pki").expanduser()  # role pki's kfab_pki_dir for this lab
ENCRYPTION_CONFIG = "/var/lib/kfab/pki/encryption-config.yaml"
WEB_REPLICAS = 3
# The module's fixture (a whole `kfab up` from bare hosts) counts against the first test's time.
pytestmark = pytest.mark.timeout(3600)


class Ops:
    """The module's cluster: inventories, kfab/kubectl/ssh helpers."""

    def __init__(self, lab, workdir: Path, wheelhouse: str):
        self.lab = lab
        self.workdir = workdir
        self.wheelhouse = wheelhouse
        data = yaml.safe_load(LAB_INVENTORY.read_text())
        spare = data["all"]["children"].pop("spare")
        self.cluster = workdir / "cluster.yml"
        self.cluster.write_text(yaml.safe_dump(data))
        data["all"]["children"]["workers"]["hosts"].update(spare["hosts"])
        self.grown = workdir / "grown.yml"
        self.grown.write_text(yaml.safe_dump(data))
        self.kubeconfig = workdir / "admin.kubeconfig"
        self.image = ""

    def kfab(self, *args: str, timeout: float = 1200, env: dict | None = None) -> subprocess.CompletedProcess:
        # One wheelhouse for the module: others edit the shared tree meanwhile, and a rebuilt kfab would rightly
        # count as a change on the hosts (upgrade passes its own --wheelhouse).
        if args[0] in ("up", "add-node", "rotate-certs"):
            args = (*args, "-e", f"kfab_wheelhouse={self.wheelhouse}")
        return subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        binary = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
        proc = subprocess.run([binary, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def ssh(self, host: str, cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.lab.ssh(host, cmd, check=check)

    def nodes(self) -> dict[str, bool]:
        return {n["metadata"]["name"]: any(c["type"] == "Ready" and c["status"] == "True"
                                           for c in n["status"].get("conditions", []))
                for n in self.get("nodes")["items"]}

    def pods_of(self, app: str) -> list[dict]:
        return self.get("pods", "-l", f"app={app}")["items"]

    def ready_pods_of(self, app: str) -> list[dict]:
        return [p for p in self.pods_of(app) if not p["metadata"].get("deletionTimestamp") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def web(name: str, replicas: int, node_selector: dict | None = None) -> str:
    """A Deployment of busybox httpd pods that answer with their name and, like a well-behaved server, keep
    serving for 3 s after SIGTERM (the time endpoints and proxies need to stop sending them traffic)."""
    script = ("mkdir -p /www && echo $HOSTNAME > /www/index.html && httpd -f -p 8080 -h /www & pid=$!; "
              "trap 'sleep 3; kill $pid; exit 0' TERM; wait")
    spec = {"containers": [{"name": "web", "image": "{image}", "command": ["sh", "-c", script],
                            "ports": [{"containerPort": 8080}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                    "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})


@pytest.fixture(scope="module")
def ops():
    from kfab.lab import Lab
    from kfab.install.wheelhouse import build
    from tests.lab.conftest import LabHosts
    lab = Lab(LAB_INVENTORY)
    if os.environ.get("KFAB_LAB_REUSE") != "1":   # 1: a lab kept with KFAB_LAB_KEEP=1 (kfab up is idempotent)
        lab.down()
    workdir = Path(tempfile.mkdtemp(prefix="kfab-ops-test-"))
    try:
        lab.up()
        # A copy: the shared wheelhouse cache keeps only the newest few builds, and others build meanwhile.
        wheelhouse = workdir / "wheelhouse"
        shutil.copytree(build(), wheelhouse)
        cluster = Ops(LabHosts(lab), workdir, str(wheelhouse))
        proc = cluster.kfab("up", "-i", str(cluster.cluster))
        assert proc.returncode == 0, f"kfab up failed:\n{proc.stdout}{proc.stderr}"
        proc = cluster.kfab("kubeconfig", "-i", str(cluster.cluster), "-o", str(cluster.kubeconfig))
        assert proc.returncode == 0, proc.stderr
        build_busybox_image(workdir)
        proc = cluster.kfab("image", "push", "-i", str(cluster.cluster), BUSYBOX_IMAGE, timeout=300)
        assert proc.returncode == 0, proc.stderr
        cluster.image = proc.stdout.strip()
        yield cluster
    finally:
        if os.environ.get("KFAB_LAB_KEEP") != "1":
            lab.down()
        shutil.rmtree(workdir, ignore_errors=True)


def test_kubeconfig_merges_a_context_named_after_the_cluster(ops):
    target = ops.workdir / "kube" / "config"
    proc = ops.kfab("kubeconfig", "-i", str(ops.cluster), env={"KUBECONFIG": str(target)})
    assert proc.returncode == 0, proc.stderr
    kubectl = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
    out = subprocess.run([kubectl, "get", "nodes", "-o", "name"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, KUBECONFIG=str(target)))
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) == {"node/o2", "node/o3"}
    assert yaml.safe_load(target.read_text())["current-context"] == "kfabops"


def daemonset(name: str) -> str:
    spec = {"containers": [{"name": "agent", "image": "{image}", "command": ["sh", "-c", "sleep 100000"]}],
            "terminationGracePeriodSeconds": 1}
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                           "spec": {"selector": {"matchLabels": {"app": name}},
                                    "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}})


def test_add_node_joins_o4_ready_and_schedulable(ops):
    # A DaemonSet running before o4 joins gets a pod there too.
    ops.kubectl("apply", "-f", "-", input=daemonset("node-agent").replace("{image}", ops.image))
    wait_for("a node-agent pod Ready on o2 and o3",
             lambda: {p["spec"]["nodeName"] for p in ops.ready_pods_of("node-agent")} == {"o2", "o3"}, timeout=120)
    proc = ops.kfab("add-node", "-i", str(ops.grown), "o4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "node/o4 is Ready and schedulable" in proc.stdout
    assert ops.nodes() == {"o2": True, "o3": True, "o4": True}
    # Only o4 was provisioned.
    assert "PLAY [" in proc.stdout and "o2" not in proc.stdout.split("RECAP", 1)[1]
    ops.kubectl("apply", "-f", "-", input=web("on-o4", 1, {"kubernetes.io/hostname": "o4"}).replace(
        "{image}", ops.image))
    wait_for("a pod Ready on o4", lambda: [p for p in ops.ready_pods_of("on-o4") if p["spec"]["nodeName"] == "o4"],
             timeout=120)
    ops.kubectl("delete", "deployment", "on-o4", "--wait=true")
    wait_for("a node-agent pod Ready on every node, o4 included",
             lambda: sorted(p["spec"]["nodeName"] for p in ops.ready_pods_of("node-agent")) == ["o2", "o3", "o4"],
             timeout=120)
    ops.kubectl("delete", "daemonset", "node-agent", "--wait=true")


def test_remove_node_drains_o4_first_then_deletes_it_and_stops_its_agent(ops):
    # Put a Deployment's pods on o4 alone: the other workers are cordoned while it starts.
    ops.kubectl("cordon", "o2", "o3")
    try:
        ops.kubectl("apply", "-f", "-", input=web("mover", 2).replace("{image}", ops.image))
        wait_for("2 mover pods Ready on o4", lambda: len(ops.ready_pods_of("mover")) == 2, timeout=120)
    finally:
        ops.kubectl("uncordon", "o2", "o3")
    assert {p["spec"]["nodeName"] for p in ops.pods_of("mover")} == {"o4"}

    proc = ops.kfab("remove-node", "-i", str(ops.grown), "o4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.index("node/o4 cordoned") < out.index("evicting pod default/mover-") < out.index("node/o4 drained") \
        < out.index("stopped and disabled kfab-node") < out.index("node/o4 deleted"), out
    # The pods moved: both Ready elsewhere (drain went one pod at a time, each after its replacement was Ready).
    pods = ops.ready_pods_of("mover")
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} <= {"o2", "o3"}, pods
    assert set(ops.nodes()) == {"o2", "o3"}
    state = ops.ssh("o4", "systemctl is-active kfab-node kfab-proxy; systemctl is-enabled kfab-node kfab-proxy",
                    check=False).stdout.split()
    assert state == ["inactive", "inactive", "disabled", "disabled"], state
    ops.kubectl("delete", "deployment", "mover")


def test_remove_node_of_an_unknown_node_changes_nothing(ops):
    proc = ops.kfab("remove-node", "-i", str(ops.cluster), "o9")
    assert proc.returncode == 1
    assert "has no node 'o9' (nodes: o2, o3)" in proc.stderr
    assert ops.nodes() == {"o2": True, "o3": True}
    assert not any(n["spec"].get("unschedulable") for n in ops.get("nodes")["items"])


def test_backup_then_restore_brings_deleted_objects_back(ops):
    ops.kubectl("create", "configmap", "before-backup", "--from-literal=k=v")
    backup = ops.workdir / "state.db"
    proc = ops.kfab("backup", "-i", str(ops.cluster), "-o", str(backup))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(backup)
    assert backup.read_bytes()[:16] == b"SQLite format 3\x00"
    ops.kubectl("delete", "configmap", "before-backup")
    ops.kubectl("create", "configmap", "after-backup", "--from-literal=k=v")

    proc = ops.kfab("restore", "-i", str(ops.cluster), str(backup), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ops.get("configmap", "before-backup")["data"] == {"k": "v"}
    assert ops.kubectl("get", "configmap", "after-backup", check=False).returncode != 0
    wait_for("nodes Ready after the restore", lambda: ops.nodes() == {"o2": True, "o3": True}, timeout=120)
    ops.kubectl("delete", "configmap", "before-backup")


def serving_serial(address: str) -> int:
    import ssl

    from cryptography import x509
    pem = ssl.get_server_certificate((address, 6443))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def test_rotate_certs_issues_new_certificates_and_the_cluster_keeps_working(ops):
    before = serving_serial("10.92.0.11")
    node_cert = ops.ssh("o2", "sha256sum /etc/kfab/*.kubeconfig").stdout
    proc = ops.kfab("rotate-certs", "-i", str(ops.cluster))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert serving_serial("10.92.0.11") != before
    assert ops.ssh("o2", "sha256sum /etc/kfab/*.kubeconfig").stdout != node_cert
    assert "o1: restarted kfab-apiserver, kfab-controller-manager, kfab-scheduler" in proc.stdout, proc.stdout
    assert "o2: restarted kfab-node, kfab-proxy, kfab-dns" in proc.stdout, proc.stdout
    # The new admin pair works (the kubeconfig is written again from it).
    proc = ops.kfab("kubeconfig", "-i", str(ops.cluster), "-o", str(ops.kubeconfig))
    assert proc.returncode == 0, proc.stderr
    wait_for("nodes Ready after the rotation", lambda: ops.nodes() == {"o2": True, "o3": True}, timeout=120)


def test_rotate_encryption_key_keeps_every_secret_readable_and_nothing_in_clear(ops):
    """`kfab rotate-encryption-key -i` with the cluster serving (issue 16): every Secret reads back, only the new
    key is left here and on o1 (0600), every stored Secret is under it, and `strings` over the state files and
    a backup, the journal and the audit log find no Secret value; the command prints no key."""
    values = {f"rot-{i}": f"lab-rot-{secrets.token_hex(6)}" for i in range(3)}
    for name, value in values.items():
        ops.kubectl("create", "secret", "generic", name, f"--from-literal=v={value}")
    try:
        old = at_rest.encryption_keys(PKI)
        proc = ops.kfab("rotate-encryption-key", "-i", str(ops.cluster), timeout=900)
        printed = proc.stdout + proc.stderr
        assert proc.returncode == 0, printed
        new = at_rest.encryption_keys(PKI)
        assert len(new) == 1 and not set(new) & set(old), (list(old), list(new))
        (name, secret), = new.items()
        assert f"now encrypted with {name} only" in printed
        assert not at_rest.leaks(printed, [*old.values(), secret])
        remote = ops.ssh("o1", f"stat -c %a {ENCRYPTION_CONFIG} && cat {ENCRYPTION_CONFIG}").stdout
        assert remote.startswith("600\n") and secret in remote and not at_rest.leaks(remote, old.values())
        for key, value in values.items():
            got = ops.kubectl("get", "secret", key, "-o", "jsonpath={.data.v}").stdout
            assert base64.b64decode(got).decode() == value
        total, under_new = at_rest.secrets_under("o1", "/var/lib/kfab/state/state.db", name)
        assert total >= len(values) and under_new == total, (total, under_new)
        # `strings` (on this machine) over the state files copied here, and over a backup (0600)
        state = ops.workdir / "rotated-state"
        subprocess.run(["podman", "cp", "o1:/var/lib/kfab/state", str(state)], check=True, capture_output=True,
                       timeout=120)
        backup = ops.workdir / "rotated.db"
        made = ops.kfab("backup", "-i", str(ops.cluster), "-o", str(backup), timeout=300)
        assert made.returncode == 0, made.stdout + made.stderr
        assert backup.stat().st_mode & 0o777 == 0o600
        files = [*state.iterdir(), backup]
        assert any(p.name == "state.db" for p in files)
        logs = at_rest.host_output("o1", "journalctl --no-pager -u 'kfab*'; cat /var/log/kfab/audit.log")
        assert '"name":"rot-0"' in logs, "the audit log holds the creates (and so is the one read here)"
        for value in values.values():
            encoded = base64.b64encode(value.encode()).decode()
            for path in files:
                text = at_rest.strings(path)
                assert value not in text and encoded not in text, f"{path.name} holds a Secret's value"
            assert value not in logs and encoded not in logs
    finally:
        for key in values:
            ops.kubectl("delete", "secret", key, check=False)


def test_no_key_the_provisioner_handles_reaches_plan_or_up_output(ops):
    """The file holding the encryption keys edited by hand on o1: `kfab plan -v` counts the change and
    `kfab up -v` puts the file back; neither prints a private key or an encryption secret, nor do the hosts'
    journals."""
    ops.ssh("o1", f"echo '# edited by hand' >> {ENCRYPTION_CONFIG}")
    try:
        plan = ops.kfab("plan", "-i", str(ops.cluster), "-v", "-e", f"kfab_wheelhouse={ops.wheelhouse}")
        assert plan.returncode == 2, plan.stdout + plan.stderr     # 2: changes pending
        assert recap(plan.stdout)["o1"]["changed"] >= 1
    finally:
        up = ops.kfab("up", "-i", str(ops.cluster), "-v", "--limit", "o1")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "# edited by hand" not in ops.ssh("o1", f"cat {ENCRYPTION_CONFIG}").stdout
    material = at_rest.key_material(PKI)
    assert len(material) > 10, "the cluster's keys were found on this machine"
    for what, text in (("kfab plan -v", plan.stdout + plan.stderr), ("kfab up -v", up.stdout + up.stderr)):
        assert not at_rest.leaks(text, material), f"{what} printed key material"
    for host in ("o1", "o2"):
        assert not at_rest.leaks(at_rest.host_output(host, "journalctl --no-pager -u 'kfab*'"), material), host


def new_kfab_wheelhouse(workdir: Path, version: str) -> Path:
    """A genuinely new kfab: the sources copied with another version number, built into a wheelhouse."""
    from kfab.install.wheelhouse import SOURCES, build
    src = workdir / "kfab-src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).exists():
            shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "kfab", src / "kfab", ignore=shutil.ignore_patterns("__pycache__"))
    for path, old in ((src / "pyproject.toml", 'version = "'), (src / "kfab" / "__init__.py", '__version__ = "')):
        text = path.read_text()
        start = text.index(old) + len(old)
        path.write_text(text[:start] + version + text[text.index('"', start):])
    return build(cache=workdir / "wheelhouses", repo=src)


class Prober(threading.Thread):
    """GETs the Service through its NodePort on every worker in turn, as a load balancer in front of them would,
    and records every failure."""

    def __init__(self, addresses: list[str]):
        super().__init__(daemon=True)
        self.addresses = addresses
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            address = self.addresses[i % len(self.addresses)]
            i += 1
            try:
                with urllib.request.urlopen(f"http://{address}:{NODE_PORT}/", timeout=3) as resp:
                    resp.read()
                self.ok += 1
            except Exception as exc:  # noqa: BLE001 - every kind of failure counts
                self.failures.append(f"{time.strftime('%H:%M:%S')} {address}: {exc}")
            self.stop.wait(0.2)


def test_upgrade_to_a_new_wheel_keeps_a_service_answering_throughout(ops):
    ops.kubectl("apply", "-f", "-", input=web("probed", WEB_REPLICAS).replace("{image}", ops.image))
    ops.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "probed"},
        "spec": {"type": "NodePort", "selector": {"app": "probed"},
                 "ports": [{"port": 80, "targetPort": 8080, "nodePort": NODE_PORT}]}}))
    wait_for("all probed pods Ready", lambda: len(ops.ready_pods_of("probed")) == WEB_REPLICAS, timeout=120)
    workers = ["10.92.0.12", "10.92.0.13"]
    wait_for("the Service answering on every worker", lambda: all(
        urllib.request.urlopen(f"http://{a}:{NODE_PORT}/", timeout=3).read() for a in workers), timeout=60)

    version = "0.1.0+upgradetest"
    wheelhouse = new_kfab_wheelhouse(ops.workdir, version)
    prober = Prober(workers)
    prober.start()
    try:
        proc = ops.kfab("upgrade", "-i", str(ops.cluster), "--wheelhouse", str(wheelhouse))
    finally:
        prober.stop.set()
        prober.join()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.index("--- upgrading o1") < out.index("node/o2 cordoned") < out.index("node/o2 uncordoned") \
        < out.index("node/o3 cordoned") < out.index("node/o3 uncordoned"), out
    # Each upgraded worker proved it can start and stop a pod before it took workloads again.
    assert out.index("node/o2 cordoned") < out.index("canary pod started and stopped on node/o2") \
        < out.index("node/o2 uncordoned"), out
    assert out.index("canary pod started and stopped on node/o3") < out.index("node/o3 uncordoned"), out
    for host in ("o1", "o2", "o3"):
        installed = ops.ssh(host, "/opt/kfab/venv/bin/python -c 'import kfab; print(kfab.__version__)'").stdout
        assert installed.strip() == version, host
    assert ops.nodes() == {"o2": True, "o3": True}
    assert prober.ok > 0
    assert prober.failures == [], f"{len(prober.failures)} of {prober.ok + len(prober.failures)} probes failed: " \
                                  f"{prober.failures[:10]}"
    ops.kubectl("delete", "service", "probed")
    ops.kubectl("delete", "deployment", "probed")


def main_pid(ops: Ops, host: str, unit: str) -> int:
    return int(ops.ssh(host, f"systemctl show -p MainPID --value {unit}").stdout.strip() or 0)


def pod_containers(ops: Ops, host: str, uids: set[str]) -> set[str]:
    """IDs of the containers (pods' and their infra's) Podman runs on `host` for the pods with these uids (not
    all of the host's: pods of earlier tests may still be going away)."""
    out = ops.ssh(host, """podman ps --no-trunc --format '{{.ID}} {{index .Labels "kfab.io/pod-uid"}}'""").stdout
    return {line.split()[0] for line in out.splitlines() if len(line.split()) == 2 and line.split()[1] in uids}


def serve(ops: Ops, app: str, replicas: int, node_port: int) -> None:
    """A Deployment of `web` pods behind a NodePort Service, all Ready."""
    ops.kubectl("apply", "-f", "-", input=web(app, replicas).replace("{image}", ops.image))
    ops.kubectl("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
        "spec": {"type": "NodePort", "selector": {"app": app},
                 "ports": [{"port": 80, "targetPort": 8080, "nodePort": node_port}]}}))
    wait_for(f"{replicas} {app} pods Ready", lambda: len(ops.ready_pods_of(app)) == replicas, timeout=120)


def answers_on_every_worker(node_port: int) -> bool:
    return all(urllib.request.urlopen(f"http://{a}:{node_port}/", timeout=3).read()
               for a in ("10.92.0.12", "10.92.0.13"))


def test_every_kfab_unit_restarts_after_kill_9_and_the_cluster_converges(ops):
    serve(ops, "survivor", 2, NODE_PORT + 1)
    pods_before = {p["metadata"]["uid"] for p in ops.ready_pods_of("survivor")}
    containers = {host: pod_containers(ops, host, pods_before) for host in ("o2", "o3")}
    assert sum(map(len, containers.values())) == 4, containers   # 2 pods: infra + web each

    restarted: dict[str, float] = {}
    for host in ("o1", "o2", "o3"):
        units = ops.ssh(host, "systemctl list-units 'kfab-*' 'etcd.service' --state=active --no-legend --plain "
                              "| awk '{print $1}' | grep -v '^kfab-lab-'", check=False).stdout.split()
        assert units, host
        for unit in units:
            old = main_pid(ops, host, unit)
            assert old > 0, f"{host} {unit}"
            ops.ssh(host, f"kill -9 {old}")
            t0 = time.monotonic()
            wait_for(f"{host} {unit} active again after kill -9", lambda: main_pid(ops, host, unit) not in (0, old)
                     and ops.ssh(host, f"systemctl is-active {unit}", check=False).stdout.strip() == "active",
                     timeout=60)
            restarted[f"{host}/{unit}"] = round(time.monotonic() - t0, 1)
    print(f"unit kill -9 -> active again (s): {restarted}")
    assert {"o1/kfab-apiserver.service", "o1/kfab-controller-manager.service", "o1/kfab-scheduler.service",
            "o2/kfab-node.service", "o2/kfab-proxy.service", "o3/kfab-node.service"} <= set(restarted), restarted

    # Converged: nodes Ready, the same pods still running (the agents' restarts left them alone), the Service
    # answering through every worker, and new pods start.
    wait_for("nodes Ready after the kills", lambda: ops.nodes() == {"o2": True, "o3": True}, timeout=120)
    wait_for("the survivor pods Ready again", lambda: len(ops.ready_pods_of("survivor")) == 2, timeout=120)
    assert {p["metadata"]["uid"] for p in ops.ready_pods_of("survivor")} == pods_before
    for host in ("o2", "o3"):
        assert containers[host] <= pod_containers(ops, host, pods_before), f"{host}: a pod's container was replaced"
    wait_for("the Service answering on every worker", lambda: answers_on_every_worker(NODE_PORT + 1), timeout=60)
    ops.kubectl("scale", "deployment", "survivor", "--replicas=4")
    wait_for("4 survivor pods Ready", lambda: len(ops.ready_pods_of("survivor")) == 4, timeout=120)
    ops.kubectl("delete", "service", "survivor")
    ops.kubectl("delete", "deployment", "survivor")


def test_a_dead_workers_pods_run_elsewhere_within_20_s_and_a_blip_keeps_them(ops):
    ops.kubectl("apply", "-f", "-", input=web("moved", 4).replace("{image}", ops.image))
    wait_for("4 moved pods Ready on both workers", lambda: len(ops.ready_pods_of("moved")) == 4
             and {p["spec"]["nodeName"] for p in ops.ready_pods_of("moved")} == {"o2", "o3"}, timeout=120)
    uids = {p["metadata"]["uid"] for p in ops.pods_of("moved")}

    # A blip shorter than the grace period (10 s): o3 frozen for ~4 s keeps its pods.
    assert ops.kfab("lab", "pause", "o3", "-i", str(LAB_INVENTORY)).returncode == 0
    time.sleep(3)
    assert ops.kfab("lab", "unpause", "o3", "-i", str(LAB_INVENTORY)).returncode == 0
    time.sleep(15)   # past grace period + toleration: an eviction would have happened by now
    pods = ops.pods_of("moved")
    assert {p["metadata"]["uid"] for p in pods} == uids and not any(p["metadata"].get("deletionTimestamp")
                                                                     for p in pods), pods
    assert ops.nodes() == {"o2": True, "o3": True}

    # A dead worker (power cut): its pods run on the other one within 20 s.
    lost = {p["metadata"]["name"] for p in ops.pods_of("moved") if p["spec"]["nodeName"] == "o3"}
    assert ops.kfab("lab", "stop", "--kill", "o3", "-i", str(LAB_INVENTORY)).returncode == 0
    t0 = time.monotonic()
    wait_for("4 moved pods Ready without o3", lambda: len(ops.ready_pods_of("moved")) == 4 and all(
        p["spec"]["nodeName"] == "o2" for p in ops.ready_pods_of("moved")), timeout=120, interval=0.1)
    took = time.monotonic() - t0
    # The figure is bench/node_loss.py's to judge (no timed asserts in tests): printed here for the CI log.
    print(f"node loss -> pods Ready elsewhere: {took:.1f} s (kfab up's defaults: grace 10 s, toleration 3 s)")

    # The worker comes back with its disk: the replaced pods are stopped and their objects go; no duplicates.
    assert ops.kfab("lab", "start", "o3", "-i", str(LAB_INVENTORY)).returncode == 0
    wait_for("o3 Ready again", lambda: ops.nodes() == {"o2": True, "o3": True}, timeout=120)
    wait_for("the replaced pods gone", lambda: not lost & {p["metadata"]["name"] for p in ops.pods_of("moved")},
             timeout=120)
    lost_uids = uids - {p["metadata"]["uid"] for p in ops.pods_of("moved")}
    left = ops.ssh("o3", "podman pod ps --format '{{.Labels}}'").stdout
    assert not any(uid in left for uid in lost_uids), left
    # Converges with no duplicate: in one run (load ~10) 2 of the 4 pods were not Ready at the very moment the
    # replaced ones went (not explained yet; issue 15 stays open), so this waits for the Deployment to converge.
    assert len(ops.pods_of("moved")) == 4, ops.pods_of("moved")
    wait_for("4 moved pods Ready, no duplicate", lambda: len(ops.pods_of("moved")) == 4
             and len(ops.ready_pods_of("moved")) == 4, timeout=60)
    ops.kubectl("delete", "deployment", "moved")


def test_chaos_during_a_rolling_update_keeps_every_invariant(ops):
    """Faults while a Deployment rolls: the controller-manager and a node agent killed, a worker frozen, a worker cut
    off. After each: no object lost, the Deployment converges, no duplicate pods, the Service answers."""
    def lab(action: str, host: str) -> None:
        assert ops.kfab("lab", action, host, "-i", str(LAB_INVENTORY)).returncode == 0, (action, host)

    def kill_unit(host: str, unit: str) -> None:
        ops.ssh(host, f"kill -9 {main_pid(ops, host, unit)}")

    serve(ops, "chaos", 4, NODE_PORT + 2)
    for i in range(10):
        ops.kubectl("create", "configmap", f"chaos-{i}", f"--from-literal=i={i}")

    faults = [("o1", lambda: kill_unit("o1", "kfab-controller-manager"), None),
              ("o2", lambda: lab("pause", "o2"), lambda: lab("unpause", "o2")),
              ("o3", lambda: kill_unit("o3", "kfab-node"), None),
              ("o3", lambda: lab("partition", "o3"), lambda: lab("heal", "o3"))]
    for round_, (host, fault, undo) in enumerate(faults):
        ops.kubectl("set", "env", "deployment/chaos", f"ROUND={round_}")     # a rolling update starts
        fault()
        if undo:
            time.sleep(4)   # shorter than the grace period: a blip, not a node loss
            undo()
        status = ops.kubectl("rollout", "status", "deployment/chaos", "--timeout=180s", check=False)
        assert status.returncode == 0, f"round {round_} ({host}): {status.stdout}{status.stderr}"
        wait_for(f"round {round_}: 4 chaos pods, all of the new template, Ready", lambda: (
            len(ops.ready_pods_of("chaos")) == 4 and len({p["metadata"]["name"] for p in ops.pods_of("chaos")
                                                         if not p["metadata"].get("deletionTimestamp")}) == 4
            and all(any(e.get("value") == str(round_) for e in p["spec"]["containers"][0].get("env") or [])
                    for p in ops.ready_pods_of("chaos"))), timeout=120)
        names = [ops.get("configmap", f"chaos-{i}")["metadata"]["name"] for i in range(10)]
        assert len(names) == 10
        wait_for(f"round {round_}: the Service answering on every worker",
                 lambda: answers_on_every_worker(NODE_PORT + 2), timeout=60)
    # No duplicates on the hosts either: once the old pods are gone, Podman runs exactly the pods the API binds.
    def hosts_match() -> bool:
        pods = ops.pods_of("chaos")
        if any(p["metadata"].get("deletionTimestamp") for p in pods):
            return False
        for host in ("o2", "o3"):
            bound = {p["metadata"]["uid"] for p in pods if p["spec"]["nodeName"] == host}
            running = ops.ssh(host, "podman pod ps --filter status=running --format '{{.Labels}}'").stdout
            if running.count("kfab.io/pod-name:chaos-") != len(bound) or not all(u in running for u in bound):
                return False
        return True
    wait_for("Podman on each worker running exactly the chaos pods bound there", hosts_match, timeout=60)
    ops.kubectl("delete", "service", "chaos")
    ops.kubectl("delete", "deployment", "chaos")
    for i in range(10):
        ops.kubectl("delete", "configmap", f"chaos-{i}")


def test_reset_leaves_no_kfab_behind_and_up_works_again(ops):
    proc = ops.kfab("reset", "-i", str(ops.grown), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(proc.stdout.split("\n")[:-1]) == [f"o{i}: kfab removed" for i in range(1, 5)], proc.stdout
    for host in ("o1", "o2", "o3", "o4"):
        # (kfab-lab-firstboot is the lab image's own unit, not kfab's)
        left = ops.ssh(host, "systemctl list-unit-files 'kfab-*' --no-legend | grep -v '^kfab-lab-'; "
                             "ls -d /opt/kfab /etc/kfab /var/lib/kfab /var/lib/etcd/kfab "
                             "/etc/containers/registries.conf.d/kfab-registry.conf 2>/dev/null; "
                             "nft list table ip kfab 2>/dev/null; ip route show proto 77; podman pod ps -q; "
                             "systemctl is-active etcd docker-registry 2>/dev/null | "
                             "grep -x active", check=False).stdout
        assert left.strip() == "", f"{host} still has: {left}"
    proc = ops.kfab("up", "-i", str(ops.cluster))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_for("nodes Ready after a new kfab up", lambda: ops.nodes() == {"o2": True, "o3": True}, timeout=120)
