"""Role common on the scenario's hosts (testinfra over SSH): the base packages, Podman on runc with the lab's
ulimits, forwarding on and persisted, the host's name, and every inventory host known by name."""

from pathlib import Path

import yaml

HOSTS = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]["hosts"]
testinfra_hosts = [f"ansible://{name}" for name in HOSTS]


def test_base_packages(host):
    for package in ("podman", "runc", "nftables", "iptables", "curl"):
        assert host.package(package).is_installed, package


def test_podman_runs_on_runc_with_the_roles_ulimits(host):
    assert host.check_output("podman info --format '{{.Host.OCIRuntime.Name}}'") == "runc"
    conf = host.file("/etc/containers/containers.conf").content_string
    assert 'runtime = "runc"' in conf and "nofile=10000:10000" in conf, conf


def test_forwarding_is_on_and_persisted(host):
    assert host.sysctl("net.ipv4.ip_forward") == 1
    assert "net.ipv4.ip_forward" in host.file("/etc/sysctl.d/90-kfab.conf").content_string


def test_host_name_and_every_host_by_name(host):
    me = host.ansible.get_variables()["inventory_hostname"]
    assert host.check_output("hostname") == me
    for name, variables in HOSTS.items():
        assert host.check_output(f"getent hosts {name}").split()[0] == variables["ansible_host"], name
