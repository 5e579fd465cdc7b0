"""Role kfab-install on the scenario's hosts (testinfra over SSH): the worker has this checkout's kfab in its
venv, and it runs; the etcd-only host has none."""

from importlib.metadata import version
from pathlib import Path

import yaml

GROUPS = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]["children"]
WORKER = next(iter(GROUPS["workers"]["hosts"]))
ETCD_ONLY = next(iter(GROUPS["etcd"]["hosts"]))
VENV = "/opt/kfab/venv"   # the role's kfab_venv
testinfra_hosts = [f"ansible://{WORKER}", f"ansible://{ETCD_ONLY}"]


def test_kfab_runs_from_its_venv_on_a_worker(host):
    if host.ansible.get_variables()["inventory_hostname"] != WORKER:
        assert not host.file(VENV).exists
        return
    installed = host.check_output(f"{VENV}/bin/python -c 'import importlib.metadata as m; print(m.version(\"kfab\"))'")
    assert installed == version("kfab")
    usage = host.check_output(f"{VENV}/bin/kfab --help")
    for command in ("node", "proxy", "apiserver"):
        assert command in usage, usage
