"""The API server's systemd unit, rendered as role control-plane renders it (kfab's template environment,
trim_blocks as Ansible's), parses as a `kfab apiserver` command line — with and without the audit log."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from kfab.cli import build_parser
from kfab.provision.templating import file_environment

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "control-plane"
VARIABLES = dict(state_store_backend="sqlite", group_names=["control_plane"], kfab_venv="/opt/kfab/venv",
                 state_store_url="sqlite:///var/lib/kfab/state/state.db", kfab_data_dir="/var/lib/kfab",
                 control_plane_bind="0.0.0.0", kfab_apiserver_port=6443, inventory_hostname="u1",
                 control_plane_advertise_address="10.91.0.11", control_plane_audit_log_path="/var/log/kfab/audit.log",
                 control_plane_audit_log_maxsize=100, control_plane_audit_log_maxbackup=10,
                 control_plane_default_unreachable_toleration_seconds=3,
                 control_plane_default_not_ready_toleration_seconds=10)


def exec_start(level: str) -> list[str]:
    environment = file_environment([ROLE / "templates", REPO / "templates"])   # the role's, then the shared unit
    unit = environment.get_template("kfab-apiserver.service.j2").render(**VARIABLES, control_plane_audit_level=level)
    command = unit.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0]
    return shlex.split(command.replace("\\\n", " "))


@pytest.mark.parametrize("level", ["Metadata", "RequestResponse", "None"])
def test_the_unit_is_a_valid_kfab_apiserver_command(level):
    argv = exec_start(level)
    assert argv[0] == "/opt/kfab/venv/bin/kfab"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "apiserver" and args.advertise_address == "10.91.0.11"
    assert (args.default_unreachable_toleration_seconds, args.default_not_ready_toleration_seconds) == (3, 10)
    if level == "None":
        assert args.audit_log_path is None
    else:
        assert str(args.audit_log_path) == "/var/log/kfab/audit.log" and args.audit_level == level
        assert args.audit_log_maxbackup == 10
