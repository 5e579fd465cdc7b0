"""render_update: the incremental transaction leaves exactly the table a full rewrite would — checked by
nft itself in throwaway network namespaces (this machine's own rules are never touched)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from kfab.proxy.rules import build_ruleset, render_update
from tests.netns import NetNS


def svc(name, ip, node_port=None):
    port = {"name": "http", "port": 80, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": ip, "ports": [port]}}


def sl(name, ips):
    return {"metadata": {"namespace": "default", "name": f"{name}-x", "labels": {"kubernetes.io/service-name": name}},
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


BEFORE = ([svc("a", "10.96.0.1", 30001), svc("b", "10.96.0.2"), svc("c", "10.96.0.3")],
          [sl("a", ["10.244.1.1", "10.244.2.1"]), sl("b", ["10.244.1.2"]), sl("c", ["10.244.1.3"])])
AFTER = ([svc("a", "10.96.0.1", 30001), svc("b", "10.96.0.2"), svc("d", "10.96.0.4")],   # c deleted, d new
         [sl("a", ["10.244.1.1"]), sl("b", []), sl("d", ["10.244.1.4", "10.244.2.4"])])  # a shrinks, b empty


def build(state):
    return build_ruleset(*state, ["10.79.0.11"], cluster_cidr="10.244.0.0/16")


def test_only_changed_chains_and_elements_are_written():
    update = render_update(build(BEFORE), build(AFTER))
    assert "delete table" not in update
    assert "flush chain ip kfab svc-default-a-tcp-80" in update
    assert "add chain ip kfab svc-default-d-tcp-80" in update
    assert "delete chain ip kfab svc-default-c-tcp-80" in update
    assert "delete chain ip kfab svc-default-b-tcp-80" in update          # no endpoint left: rejected instead
    assert "services" not in [line.split()[-1] for line in update.splitlines() if "chain" in line]
    assert render_update(build(AFTER), build(AFTER)) == ""


def test_a_changed_base_chain_asks_for_a_full_rewrite():
    old = build(BEFORE)
    new = build_ruleset(*BEFORE, ["10.79.0.11"], cluster_cidr="10.244.0.0/16", local_pod_cidr="10.244.1.0/24")
    assert render_update(old, new) is None


@pytest.mark.skipif(not shutil.which("unshare") or not shutil.which("nft"), reason="needs unshare, nft")
def test_the_update_gives_the_same_table_as_a_full_rewrite():
    def nft(ns, text):
        subprocess.run([*ns.prefix, "nft", "-f", "-"], input=text, text=True, check=True, capture_output=True)
        return ns.run("nft list table ip kfab").stdout
    try:
        with NetNS() as incremental, NetNS() as full:
            nft(incremental, build(BEFORE).text())
            got = nft(incremental, render_update(build(BEFORE), build(AFTER)))
            want = nft(full, build(AFTER).text())
    except OSError as e:
        pytest.skip(str(e))
    assert got == want
