"""Every long-running kfab unit restarts itself, whatever ended it and however often (issue 15): the unit files
the roles install (each role's template on the shared templates/kfab-service.j2), read as systemd reads them."""

from __future__ import annotations

import configparser
from pathlib import Path

import jinja2
import yaml

from kfab.provision.templating import file_environment

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
UNITS = sorted(ROLES.glob("*/templates/kfab-*.service.j2"))


def rendered(path: Path) -> str:
    """The unit as its role renders it; variables it names render empty (only the [Unit]/[Service] keys matter)."""
    environment = file_environment([path.parent, REPO / "templates"])
    environment.undefined = jinja2.ChainableUndefined
    return environment.get_template(path.name).render()


def sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str
    # Continuation lines and Jinja blocks of ExecStart are of no interest here.
    parser.read_string("\n".join(line for line in text.splitlines() if not line.startswith((" ", "{%"))))
    return parser


def test_every_kfab_unit_restarts_always_every_few_seconds_without_a_start_limit():
    names = {path.name.removesuffix(".service.j2") for path in UNITS}
    assert {"kfab-apiserver", "kfab-controller-manager", "kfab-scheduler", "kfab-node", "kfab-proxy", "kfab-dns",
            "kfab-ingress", "kfab-provisioner"} <= names
    for path in UNITS:
        unit = sections(rendered(path))
        assert unit["Service"]["Restart"] == "always", path
        assert 1 <= float(unit["Service"]["RestartSec"]) <= 5, path
        # systemd's default (5 starts in 10 s) would leave a crash-looping unit failed for good.
        assert unit["Unit"]["StartLimitIntervalSec"] == "0", path


def test_stopping_the_node_agent_leaves_its_pods_running():
    unit = sections(rendered(ROLES / "worker/templates/kfab-node.service.j2"))
    assert unit["Service"]["KillMode"] == "process"


def test_etcd_gets_the_same_restart_policy_as_a_drop_in():
    tasks = yaml.safe_load((ROLES / "state-store/tasks/etcd.yml").read_text())
    drop_in = next(t["copy"] for t in tasks if "copy" in t and t["copy"]["dest"].startswith(
        "/etc/systemd/system/etcd.service.d/"))
    unit = sections(drop_in["content"])
    assert (unit["Service"]["Restart"], unit["Service"]["RestartSec"], unit["Unit"]["StartLimitIntervalSec"]) == (
        "always", "2", "0")
