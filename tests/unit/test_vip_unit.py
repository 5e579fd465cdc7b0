"""The virtual IP holder's systemd unit, rendered as role control-plane renders it (on the shared unit template),
parses as a `kfab vip` command line for the host's own address; `kfab vip` refuses an address that is not IPv4 with
one line; with control_plane_vip every client of the API is pointed at it, without it at the first control-plane
host."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from kfab.cli import build_parser
from kfab.provision.api import Site
from kfab.provision.templating import file_environment

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "control-plane"


def test_the_unit_is_a_valid_kfab_vip_command():
    unit = file_environment([ROLE / "templates", REPO / "templates"]).get_template("kfab-vip.service.j2").render(
        kfab_venv="/opt/kfab/venv", control_plane_vip="10.87.0.100", kfab_config_dir="/etc/kfab",
        control_plane_advertise_address="10.87.0.11", inventory_hostname="ha1")
    command = unit.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0]
    argv = shlex.split(command.replace("\\\n", " "))
    assert argv[0] == "/opt/kfab/venv/bin/kfab"
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.address, args.own_address, args.identity) == ("vip", "10.87.0.100", "10.87.0.11", "ha1")
    assert str(args.kubeconfig) == "/etc/kfab/vip.kubeconfig"
    assert "Restart=always" in unit


def test_a_bad_address_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "kfab", "vip", "10.87.0", "--kubeconfig", "/nonexistent",
                           "--own-address", "10.87.0.11"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["kfab vip: Expected 4 octets in '10.87.0'"]


def test_every_client_of_the_api_uses_the_vip_when_there_is_one():
    site = Site(REPO / "tests" / "lab" / "inventory" / "ha.yml")
    for host in ("ha1", "ha2"):
        for name in ("control_plane_server_url", "pki_worker_server_url", "storage_provisioner_server"):
            assert site.var(host, name) == "https://10.87.0.100:6443", name
    # each API server lists its own etcd member first
    assert site.var("ha2", "state_store_url").startswith("etcd+https://10.87.0.12:2379,10.87.0.11:2379,10.87.0.13:2379?")


def test_without_a_vip_clients_use_the_first_control_plane_host():
    site = Site(REPO / "tests" / "lab" / "inventory" / "up.yml")
    first = site.group("control_plane")[0]
    url = f"https://{site.var(first, 'ansible_host')}:6443"
    for name in ("control_plane_server_url", "pki_worker_server_url", "storage_provisioner_server"):
        assert site.var(first, name) == url, name
