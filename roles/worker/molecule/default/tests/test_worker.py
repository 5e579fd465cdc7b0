"""Role worker on the scenario's worker (testinfra over SSH): the node agent, service proxy and ingress run as
units, and the worker is a Ready Node with a podCIDR, as the cluster admin sees it with kubectl from here."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

LAB = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]
WORKERS = list(LAB["children"]["workers"]["hosts"])
testinfra_hosts = ["ansible://workers"]


def test_units_run(host):
    for unit in ("kfab-node", "kfab-proxy", "kfab-ingress"):
        service = host.service(unit)
        assert service.is_running and service.is_enabled, unit


def test_every_worker_is_a_ready_node():
    kubeconfig = Path(f"~/.local/share/kfab/clusters/{LAB['vars']['kfab_lab_network']}/admin.kubeconfig").expanduser()
    kubectl = Path(sys.executable).parent / "kubectl"
    out = subprocess.run([str(kubectl), "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    nodes = {n["metadata"]["name"]: n for n in json.loads(out.stdout)["items"]}
    assert sorted(nodes) == sorted(WORKERS), sorted(nodes)
    for name, node in nodes.items():
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True" and node["spec"].get("podCIDR"), (name, node["status"])
