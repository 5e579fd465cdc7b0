"""Every role's molecule scenario (docs/molecule.md) is wired the same way: molecule's delegated driver with
the shared kfab playbooks of tests/molecule/, the scenario's inventory linked as molecule's, a lab of its own
on a /28 of 10.90.0.0/24 that no other scenario uses, a play that runs the role, and testinfra tests."""

import ipaddress
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(REPO.glob("roles/*/molecule/default"))
SCENARIO_RANGE = ipaddress.ip_network("10.90.0.0/24")


def _inventory(scenario: Path) -> dict:
    return yaml.safe_load((scenario / "inventory.yml").read_text())


def test_there_are_scenarios():
    assert {s.parents[1].name for s in SCENARIOS} >= {"package-cache", "pki"}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.parents[1].name)
def test_scenario_is_wired_to_kfab(scenario):
    config = yaml.safe_load((scenario / "molecule.yml").read_text())
    assert config["driver"]["name"] == "default"
    for step in ("create", "converge", "destroy"):
        playbook = (scenario / config["ansible"]["playbooks"][step]).resolve()
        assert playbook == REPO / "tests" / "molecule" / f"{step}.yml", (step, playbook)
    assert config["provisioner"]["inventory"]["links"] == {"hosts": "inventory.yml"}
    assert config["verifier"]["name"] == "testinfra" and list((scenario / "tests").glob("test_*.py"))
    role = scenario.parents[1].name
    plays = yaml.safe_load((scenario / "converge.kfab.yml").read_text())
    assert any(role in [r if isinstance(r, str) else r["role"] for r in play.get("roles", [])] for play in plays)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.parents[1].name)
def test_scenario_lab_is_its_own(scenario):
    lab = _inventory(scenario)["all"]["vars"]
    subnet = ipaddress.ip_network(lab["kfab_lab_subnet"])
    assert subnet.subnet_of(SCENARIO_RANGE) and subnet.prefixlen == 28, subnet
    for path in ("ansible_ssh_private_key_file", "kfab_known_hosts_file"):
        assert f"/lab/{lab['kfab_lab_network']}/" in lab[path], path
    others = [s for s in SCENARIOS if s != scenario]
    for other in others:
        theirs = _inventory(other)["all"]["vars"]
        assert theirs["kfab_lab_network"] != lab["kfab_lab_network"], other
        assert not ipaddress.ip_network(theirs["kfab_lab_subnet"]).overlaps(subnet), other
    assert f"| {lab['kfab_lab_network']} | {subnet} |" in (REPO / "docs" / "molecule.md").read_text()
