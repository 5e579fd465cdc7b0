"""`kfab node` on real lab workers (kt2, kt3) against a real `kfab server`: pods run in Podman, report status,
restart, probe, log, and survive an agent restart — driven with kubectl and checked over SSH with podman."""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest

from tests.lab.node_cluster import BUSYBOX_IMAGE, NodeCluster
from tests.waiting import wait_until

WORKERS = ["kt2", "kt3"]


@pytest.fixture(scope="session")
def cluster(lab):
    c = NodeCluster(lab, WORKERS).start()
    try:
        yield c
    finally:
        c.stop()


def pod(name: str, node: str, containers: list[dict], **spec) -> dict:
    for c in containers:
        c.setdefault("image", BUSYBOX_IMAGE)
        c.setdefault("imagePullPolicy", "IfNotPresent")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2, "containers": containers, **spec}}


def status(cluster, name: str) -> dict:
    return cluster.get("pod", name).get("status") or {}


def condition(st: dict, kind: str) -> str | None:
    return next((c["status"] for c in st.get("conditions") or [] if c["type"] == kind), None)


def running_and_ready(cluster, name: str) -> dict | None:
    st = status(cluster, name)
    return st if st.get("phase") == "Running" and condition(st, "Ready") == "True" and st.get("podIP") else None


def podman(cluster, host: str, cmd: str) -> str:
    return cluster.lab.ssh(host, cmd).stdout


def container_name(cluster, host: str, pod_name: str, container: str) -> str:
    out = podman(cluster, host, f"podman ps --format '{{{{.Names}}}}' --filter label=kfab.io/pod-name={pod_name} "
                                f"--filter label=kfab.io/container={container}")
    return out.split()[-1]


def test_workers_register_ready_with_capacity_podcidr_and_a_renewed_lease(cluster):
    cidrs = set()
    for host in WORKERS:
        node = cluster.get("node", host, "")
        st = node["status"]
        assert {"type": "InternalIP", "address": cluster.lab.hosts[host]} in st["addresses"]
        assert int(st["capacity"]["cpu"]) >= 1 and st["capacity"]["memory"].endswith("Ki")
        assert {c["type"]: c["status"] for c in st["conditions"]} == {
            "Ready": "True", "MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False"}
        assert st["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
        cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
        assert cidr.prefixlen == 24 and cidr.subnet_of(ipaddress.ip_network("10.244.0.0/16"))
        cidrs.add(cidr)
        first = cluster.get("lease", host, "kube-node-lease")["spec"]["renewTime"]
        wait_until(f"lease of {host} renewed",
                   lambda host=host, first=first:
                   cluster.get("lease", host, "kube-node-lease")["spec"]["renewTime"] != first,
                   20, 0.2, retry_on=(Exception,))
    assert len(cidrs) == len(WORKERS), "every node has its own podCIDR"


def test_node_credentials_cannot_do_what_nodes_may_not(cluster):
    kubeconfig = cluster.workdir / "credentials" / "kt2" / "kubeconfig"
    proc = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", "create", "deployments", check=False)
    assert proc.stdout.strip() == "no"
    proc = cluster.kubectl("--kubeconfig", str(kubeconfig), "auth", "can-i", "patch", "pods", "--subresource=status")
    assert proc.stdout.strip() == "yes"


def test_pod_runs_with_a_pod_ip_env_and_configmap_volume_and_serves_http(cluster):
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-content"},
                   "data": {"index.html": "hello from a configmap\n", "greeting": "hi"}})
    cluster.apply(pod("web", "kt2", [{
        "name": "web", "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
        "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "web-content", "key": "greeting"}}},
                {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "PLAIN", "value": "x-$(GREETING)"}],
        "volumeMounts": [{"name": "content", "mountPath": "/www"}],
        "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}}],
        volumes=[{"name": "content", "configMap": {"name": "web-content"}}]))
    st = wait_until("pod web Running and Ready",
                    lambda: running_and_ready(cluster, "web"), 60, 0.2, retry_on=(Exception,))
    node_cidr = ipaddress.ip_network(cluster.get("node", "kt2", "")["spec"]["podCIDR"])
    assert ipaddress.ip_address(st["podIP"]) in node_cidr
    assert st["hostIP"] == cluster.lab.hosts["kt2"]
    assert st["containerStatuses"][0]["state"]["running"]["startedAt"]
    name = container_name(cluster, "kt2", "web", "web")
    env = podman(cluster, "kt2", f"podman exec {name} env")
    assert "GREETING=hi" in env and "MY_NAME=web" in env and "PLAIN=x-hi" in env
    assert podman(cluster, "kt2", f"curl -s http://{st['podIP']}:8080/index.html") == "hello from a configmap\n"
    # One Podman pod for the Kubernetes pod, on the node's pod network.
    sandboxes = podman(cluster, "kt2", "podman pod ps --format '{{.Name}}' --filter label=kfab.io/pod-name=web")
    assert len(sandboxes.split()) == 1

    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-content"},
                   "data": {"index.html": "changed\n", "greeting": "hi"}})
    wait_until("the changed ConfigMap in the volume",
               lambda: podman(cluster, "kt2", f"podman exec {name} cat /www/index.html") == "changed\n",
               40, 0.2, retry_on=(Exception,))


def test_container_settings_reach_podman_user_read_only_root_workdir_env_limits_and_volumes(cluster):
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                   "stringData": {"password": "s3cret", "token": "t0ken"}})
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                   "data": {"MODE": "fast", "LEVEL": "3"}})
    manifest = pod("settings", "kt2", [
        {"name": "locked", "command": ["sleep", "3600"], "workingDir": "/work",
         "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "readOnlyRootFilesystem": True},
         "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
         "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "APP_"}],
         "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                 {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
         "volumeMounts": [{"name": "work", "mountPath": "/work"}, {"name": "creds", "mountPath": "/creds"},
                          {"name": "info", "mountPath": "/info"}, {"name": "host", "mountPath": "/host"}]},
        {"name": "writer", "command": ["sh", "-c", "echo shared > /work/note && exec sleep 3600"],
         "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
        volumes=[{"name": "work", "emptyDir": {}}, {"name": "creds", "secret": {"secretName": "creds"}},
                 {"name": "info", "downwardAPI": {"items": [
                     {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                 {"name": "host", "hostPath": {"path": "/var/lib/kfab-test-hostpath", "type": "DirectoryOrCreate"}}])
    manifest["metadata"]["labels"] = {"tier": "test"}
    cluster.apply(manifest)
    st = wait_until("pod settings Running and Ready",
                    lambda: running_and_ready(cluster, "settings"), 60, 0.2, retry_on=(Exception,))

    def sh(cmd: str, check: bool = True):
        return cluster.kubectl("exec", "settings", "-c", "locked", "--", "sh", "-c", cmd, check=check)
    assert sh("id -u; id -g; pwd").stdout.split() == ["1000", "3000", "/work"]
    env = dict(line.split("=", 1) for line in sh("env").stdout.splitlines() if "=" in line)
    assert (env["APP_MODE"], env["APP_LEVEL"], env["PASSWORD"]) == ("fast", "3", "s3cret")
    assert (env["POD_IP"], env["NODE"]) == (st["podIP"], "kt2")
    denied = sh("touch /oops", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert wait_until("the other container's file in the shared emptyDir",
                      lambda: sh("cat /work/note").stdout, 60, 0.2, retry_on=(Exception,)) \
        == "shared\n"
    assert sh("cat /creds/password /creds/token").stdout == "s3cret" + "t0ken"
    assert sh("cat /info/labels").stdout == 'tier="test"'
    cluster.lab.ssh("kt2", "echo from-host > /var/lib/kfab-test-hostpath/file")
    assert sh("cat /host/file").stdout == "from-host\n"
    locked = container_name(cluster, "kt2", "settings", "locked")
    limits = podman(cluster, "kt2", f"podman inspect -f '{{{{.HostConfig.Memory}}}} {{{{.HostConfig.CpuQuota}}}} "
                                    f"{{{{.HostConfig.CpuPeriod}}}}' {locked}").split()
    assert limits == [str(64 * 2**20), "50000", "100000"]
    cluster.kubectl("delete", "pod", "settings", "--wait=false")
    cluster.lab.ssh("kt2", "rm -rf /var/lib/kfab-test-hostpath")


def test_killed_container_is_restarted_and_counted(cluster):
    cluster.apply(pod("crashy", "kt3", [{"name": "main", "command": ["sh", "-c", "echo up; exec sleep 3600"]}]))
    wait_until("pod crashy running", lambda: running_and_ready(cluster, "crashy"), 60, 0.2, retry_on=(Exception,))
    name = container_name(cluster, "kt3", "crashy", "main")
    cluster.lab.ssh("kt3", f"kill -9 $(podman inspect -f '{{{{.State.Pid}}}}' {name})")

    def restarted():
        st = status(cluster, "crashy")["containerStatuses"][0]
        return st if st["restartCount"] == 1 and "running" in st["state"] else None
    st = wait_until("restartCount 1 and running again", restarted, 30, 0.2, retry_on=(Exception,))
    assert st["lastState"]["terminated"]["exitCode"] == 137
    assert cluster.kubectl("logs", "crashy", "--previous").stdout == "up\n"


def test_failing_readiness_probe_makes_the_pod_not_ready(cluster):
    cluster.apply(pod("probed", "kt2", [{
        "name": "main", "command": ["sh", "-c", "touch /ready; exec sleep 3600"],
        "readinessProbe": {"exec": {"command": ["test", "-f", "/ready"]}, "periodSeconds": 1,
                           "failureThreshold": 1}}]))
    wait_until("pod probed Ready", lambda: running_and_ready(cluster, "probed"), 60, 0.2, retry_on=(Exception,))
    name = container_name(cluster, "kt2", "probed", "main")
    cluster.lab.ssh("kt2", f"podman exec {name} rm /ready")
    wait_until("Ready False",
               lambda: condition(status(cluster, "probed"), "Ready") == "False", 30, 0.2, retry_on=(Exception,))
    st = status(cluster, "probed")
    assert st["phase"] == "Running" and st["containerStatuses"][0]["ready"] is False
    assert st["containerStatuses"][0]["restartCount"] == 0


def test_failing_liveness_probe_restarts_the_container(cluster):
    cluster.apply(pod("unlively", "kt3", [{
        "name": "main", "command": ["sleep", "3600"],
        "livenessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1, "failureThreshold": 2}}]))
    wait_until("liveness restart",
               lambda: status(cluster, "unlively").get("containerStatuses", [{}])[0]
.get("restartCount", 0) >= 1, 60, 0.2, retry_on=(Exception,))


def test_init_containers_run_in_order_before_the_containers(cluster):
    cluster.apply(pod("initd", "kt2", [{"name": "main", "command": ["sh", "-c", "cat /work/log; sleep 3600"],
                                        "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
                      initContainers=[{"name": f"init{i}", "image": BUSYBOX_IMAGE, "imagePullPolicy": "Never",
                                       "command": ["sh", "-c", f"echo init{i} >> /work/log"],
                                       "volumeMounts": [{"name": "work", "mountPath": "/work"}]} for i in (1, 2)],
                      volumes=[{"name": "work", "emptyDir": {}}]))
    wait_until("pod initd running", lambda: running_and_ready(cluster, "initd"), 60, 0.2, retry_on=(Exception,))
    assert cluster.kubectl("logs", "initd").stdout == "init1\ninit2\n"
    inits = status(cluster, "initd")["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]


def test_restart_policies_end_in_succeeded_and_failed(cluster):
    cluster.apply(pod("done-ok", "kt3", [{"name": "main", "command": ["true"]}], restartPolicy="OnFailure"))
    cluster.apply(pod("done-bad", "kt3", [{"name": "main", "command": ["sh", "-c", "exit 3"]}],
                      restartPolicy="Never"))
    wait_until("Succeeded",
               lambda: status(cluster, "done-ok").get("phase") == "Succeeded", 60, 0.2, retry_on=(Exception,))
    wait_until("Failed", lambda: status(cluster, "done-bad").get("phase") == "Failed", 60, 0.2, retry_on=(Exception,))
    term = status(cluster, "done-bad")["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"


def test_missing_images_report_pull_errors(cluster):
    cluster.apply(pod("never", "kt2", [{"name": "main", "image": "localhost/not-here:1",
                                        "imagePullPolicy": "Never"}]))
    cluster.apply(pod("unpullable", "kt2", [{"name": "main", "image": "127.0.0.1:9/nothing/here:1",
                                             "imagePullPolicy": "Always"}]))

    def waiting(name):
        st = (status(cluster, name).get("containerStatuses") or [{}])[0]
        return (st.get("state") or {}).get("waiting", {}).get("reason")
    wait_until("ErrImageNeverPull", lambda: waiting("never") == "ErrImageNeverPull", 60, 0.2, retry_on=(Exception,))
    wait_until("ErrImagePull or ImagePullBackOff",
               lambda: waiting("unpullable") in ("ErrImagePull", "ImagePullBackOff"), 60, 0.2, retry_on=(Exception,))
    cluster.kubectl("delete", "pod", "never", "unpullable", "--wait=false")


def test_logs_tail_and_follow(cluster):
    cluster.apply(pod("ticker", "kt3", [{"name": "main", "command": [
        "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.5; done"]}]))
    wait_until("pod ticker running", lambda: running_and_ready(cluster, "ticker"), 60, 0.2, retry_on=(Exception,))
    wait_until("3 lines of log",
               lambda: len(cluster.kubectl("logs", "ticker").stdout.splitlines()) >= 3, 60, 0.2, retry_on=(Exception,))
    assert cluster.kubectl("logs", "ticker", "--tail", "1").stdout.count("\n") == 1
    follow = subprocess.Popen([*cluster.kubectl_argv(), "logs", "-f", "ticker", "--tail", "1"],
                              stdout=subprocess.PIPE, text=True)
    try:
        lines = [follow.stdout.readline() for _ in range(3)]
    finally:
        follow.terminate()
        follow.wait(10)
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3, lines


def test_deleting_a_pod_stops_it_and_removes_its_podman_pod(cluster):
    cluster.apply(pod("doomed", "kt2", [{"name": "main", "command": ["sleep", "3600"]}]))
    wait_until("pod doomed running", lambda: running_and_ready(cluster, "doomed"), 60, 0.2, retry_on=(Exception,))
    cluster.kubectl("delete", "pod", "doomed", "--timeout=60s")
    wait_until("podman pod removed",
               lambda: podman(
cluster, "kt2", "podman pod ps -q --filter label=kfab.io/pod-name=doomed").strip() == "",
               30, 0.2, retry_on=(Exception,))


def test_agent_restart_adopts_running_pods_without_duplicates_or_orphans(cluster):
    cluster.apply(pod("steady", "kt3", [{"name": "main", "command": ["sleep", "3600"]}]))
    cluster.apply(pod("leftover", "kt3", [{"name": "main", "command": ["sleep", "3600"]}]))
    for name in ("steady", "leftover"):
        wait_until(f"pod {name} running",
                   lambda name=name: running_and_ready(cluster, name), 60, 0.2, retry_on=(Exception,))
    before = status(cluster, "steady")["containerStatuses"][0]["containerID"]
    cluster.lab.ssh("kt3", "systemctl stop kfab-node")
    # Deleted while the agent is away: the next agent must remove its Podman pod (force: no agent to finalize).
    cluster.kubectl("delete", "pod", "leftover", "--grace-period=0", "--force")
    cluster.lab.ssh("kt3", "systemctl start kfab-node")
    wait_until("leftover's Podman pod removed",
               lambda: podman(
cluster, "kt3", "podman pod ps -q --filter label=kfab.io/pod-name=leftover").strip() == "",
               60, 0.2, retry_on=(Exception,))
    st = wait_until("steady still running",
                    lambda: running_and_ready(cluster, "steady"), 30, 0.2, retry_on=(Exception,))
    assert st["containerStatuses"][0]["containerID"] == before
    assert st["containerStatuses"][0]["restartCount"] == 0
    sandboxes = podman(cluster, "kt3", "podman pod ps --format '{{.Name}}' --filter label=kfab.io/pod-name=steady")
    assert len(sandboxes.split()) == 1
    containers = json.loads(podman(cluster, "kt3", "podman ps -a --format json --filter label=kfab.io/pod-name=steady "
                                                   "--filter label=kfab.io/container=main"))
    assert len(containers) == 1


def test_a_claim_whose_volume_cannot_mount_keeps_the_pod_pending_with_an_event(cluster):
    # The NFS server named here does not exist (and a lab container host cannot mount NFS at all): the pod's
    # events say so, and nothing starts.
    cluster.apply({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "nfs-pv"},
                   "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                            "nfs": {"server": "10.79.0.11", "path": "/nfs"}, "storageClassName": ""}})
    cluster.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "nfs-claim"},
                   "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}},
                            "storageClassName": "", "volumeName": "nfs-pv"}})
    cluster.apply(pod("nfs-user", "kt2", [{"name": "main", "command": ["sleep", "3600"],
                                           "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                      volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "nfs-claim"}}]))

    def event_text():
        out = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=nfs-user", "-o", "json").stdout
        return " ".join(e.get("message", "") for e in json.loads(out)["items"])
    text = wait_until("an event about the volume",
                      lambda: ("MountVolume.SetUp failed" in event_text() or
                               "not bound" in event_text()) and event_text(), 90, 0.2, retry_on=(Exception,))
    assert "nfs-claim" in text or "nfs" in text
    assert status(cluster, "nfs-user").get("phase") == "Pending"
    cluster.kubectl("delete", "pod", "nfs-user", "--wait=false")


def test_kubectl_exec_streams_stdin_stdout_stderr_and_the_exit_code(cluster):
    cluster.apply(pod("shell", "kt2", [{"name": "main", "command": ["sleep", "3600"],
                                        "env": [{"name": "WHO", "value": "kfab"}]}]))
    wait_until("pod shell running", lambda: running_and_ready(cluster, "shell"), 60, 0.2, retry_on=(Exception,))
    out = cluster.kubectl("exec", "shell", "--", "sh", "-c", "echo $WHO; hostname")
    assert out.stdout == "kfab\nshell\n"
    assert cluster.kubectl("exec", "-i", "shell", "--", "cat", input="through stdin\n").stdout == "through stdin\n"
    failed = cluster.kubectl("exec", "shell", "--", "sh", "-c", "echo oops >&2; exit 3", check=False)
    assert failed.returncode == 3 and "oops" in failed.stderr


def test_kubectl_attach_reaches_the_containers_own_stdin_and_stdout(cluster):
    # "waiting" until the first line arrives: seeing it through attach proves the output is attached before
    # any input is sent (what a process prints before an attach is not shown, as with a kubelet).
    cluster.apply(pod("echoer", "kt2", [{"name": "main", "stdin": True, "command": [
        "sh", "-c", "while ! read -t 1 line; do echo waiting; done; echo got $line; "
                    "while read line; do echo got $line; done; echo stdin closed"]}], restartPolicy="Never"))
    cluster.apply(pod("talker", "kt2", [{"name": "main", "command": [
        "sh", "-c", "i=0; while true; do echo said $i; i=$((i+1)); sleep 0.3; done"]}]))
    for name in ("echoer", "talker"):
        wait_until(f"pod {name} running",
                   lambda name=name: running_and_ready(cluster, name), 60, 0.2, retry_on=(Exception,))
    attached = subprocess.Popen([*cluster.kubectl_argv(), "attach", "-i", "echoer"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    assert attached.stdout.readline() == "waiting\n"
    out, _ = attached.communicate("one\ntwo\n", timeout=60)
    assert [line for line in out.splitlines() if line not in ("waiting", "")] == \
        ["got one", "got two", "stdin closed"]
    wait_until("echoer Succeeded once its stdin closed",
               lambda: status(cluster, "echoer").get("phase") == "Succeeded", 60, 0.2, retry_on=(Exception,))
    # Output as the process writes it; detaching (kubectl ends) leaves the container running.
    attached = subprocess.Popen([*cluster.kubectl_argv(), "attach", "talker"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [attached.stdout.readline() for _ in range(2)]
    finally:
        attached.terminate()
        attached.wait(10)
    assert all(line.startswith("said ") for line in lines), lines
    wait_until("the agent's podman attach gone",
               lambda: not cluster.lab.ssh(
"kt2", "pgrep -f '^podman attach' || true").stdout.strip(), 60, 0.2, retry_on=(Exception,))
    assert podman(cluster, "kt2", "podman ps -q --filter label=kfab.io/pod-name=talker "
                                  "--filter label=kfab.io/container=main").strip()
    st = status(cluster, "talker")["containerStatuses"][0]
    assert st["restartCount"] == 0 and "running" in st["state"]
    cluster.kubectl("delete", "pod", "echoer", "talker", "--wait=false")


def port_forward(cluster, target: str, port: int) -> tuple[subprocess.Popen, int]:
    """`kubectl port-forward <target> :<port>` (a free local port); (the process, that local port)."""
    proc = subprocess.Popen([*cluster.kubectl_argv(), "port-forward", target, f":{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()   # "Forwarding from 127.0.0.1:41234 -> 8080"
    if "Forwarding from 127.0.0.1:" not in line:
        proc.kill()
        raise AssertionError(f"kubectl port-forward {target}: {line}{proc.stderr.read()}")
    return proc, int(line.split("127.0.0.1:", 1)[1].split()[0])


def test_kubectl_port_forward_reaches_a_server_bound_to_localhost_in_the_pod(cluster):
    import hashlib
    import urllib.request
    cluster.apply(pod("forwarded", "kt3", [{"name": "web", "command": [
        "sh", "-c", "mkdir -p /www && hostname > /www/index.html && "
                    "dd if=/dev/urandom of=/www/blob bs=64k count=16 2>/dev/null && md5sum /www/blob > /www/sum && "
                    "exec httpd -f -p 127.0.0.1:8080 -h /www"]}]))    # only the pod itself can reach 127.0.0.1
    wait_until("pod forwarded running", lambda: running_and_ready(cluster, "forwarded"), 60, 0.2, retry_on=(Exception,))
    proc, local = port_forward(cluster, "pod/forwarded", 8080)
    try:
        def get(path: str) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{local}{path}", timeout=30) as answer:
                return answer.read()
        assert wait_until("an answer through the forwarded port",
                          lambda: get("/index.html"), 60, 0.2, retry_on=(Exception,)) == b"forwarded\n"
        blob = get("/blob")                                   # 1 MiB through SPDY frames, byte for byte
        assert hashlib.md5(blob).hexdigest() == get("/sum").split()[0].decode()
    finally:
        proc.terminate()
        proc.wait(10)
    # Nothing listens on 9999: kubectl reports the agent's error for that connection, as with a kubelet.
    proc, local = port_forward(cluster, "pod/forwarded", 9999)
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=30).read()
        proc.wait(30)
        assert "error forwarding port 9999 to pod forwarded" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cluster.kubectl("delete", "pod", "forwarded", "--wait=false")


def test_host_restart_brings_the_pods_back_without_duplicates(cluster):
    """After a reboot Podman shows the containers only "Created": the agent makes a new sandbox and starts them."""
    cluster.apply(pod("survivor", "kt3", [{"name": "main", "command": ["sleep", "3600"]}]))
    wait_until("pod survivor running", lambda: running_and_ready(cluster, "survivor"), 60, 0.2, retry_on=(Exception,))
    before = status(cluster, "survivor")["containerStatuses"][0]
    subprocess.run(["podman", "restart", "-t", "2", "kt3"], check=True, capture_output=True, timeout=120)

    def back():
        st = running_and_ready(cluster, "survivor")
        cs = (st or {}).get("containerStatuses", [{}])[0]
        return st if cs.get("containerID") != before["containerID"] else None
    st = wait_until("survivor running again after the host restart", back, 120, 1, retry_on=(Exception,))
    assert st["containerStatuses"][0]["restartCount"] > before["restartCount"]
    sandboxes = podman(cluster, "kt3", "podman pod ps --format '{{.Name}}' --filter label=kfab.io/pod-name=survivor")
    assert len(sandboxes.split()) == 1
    running = podman(cluster, "kt3", "podman ps -q --filter label=kfab.io/pod-name=survivor "
                                     "--filter label=kfab.io/container=main")
    assert len(running.split()) == 1
