"""kfab.cli imports only the component a sub-command belongs to: its table of who adds which sub-command must
match what each component's add_commands does, and `kfab server` must not load the other components."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kfab import cli


def _subcommands(parser) -> dict:
    return next(a for a in parser._actions if a.dest == "command").choices


FULL = _subcommands(cli.build_parser())


def test_the_table_names_every_subcommand():
    claimed = {name for _, names in cli.COMPONENTS for name in names}
    assert claimed == set(FULL)


@pytest.mark.parametrize("command", sorted(FULL))
def test_a_command_parsed_alone_is_the_same_command(command):
    alone = _subcommands(cli.build_parser(command))[command]
    assert alone.format_help() == FULL[command].format_help()
    func, full_func = alone.get_default("func"), FULL[command].get_default("func")  # lambdas: made per parser
    assert getattr(func, "__qualname__", None) == getattr(full_func, "__qualname__", None)


def test_kfab_server_does_not_import_the_other_components():
    code = ("import sys; from kfab import cli; cli.build_parser('server'); "
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('kfab.') and m.count('.') >= 1}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for other in ("provision", "lab", "ops", "node", "dns", "proxy", "ingress", "cache", "registry", "dashboard"):
        assert f"'{other}'" not in loaded, f"kfab server imported kfab.{other}: {loaded}"
