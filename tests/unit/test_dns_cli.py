"""Bad `kfab dns` / `kfab proxy` arguments: a clear error naming the option or file, exit 2, nothing started."""

from __future__ import annotations

import pytest

from kfab.cli import main
from kfab.dns.commands import parse_address, resolv_conf_nameserver


@pytest.mark.parametrize("argv, message", [
    (["dns", "--kubeconfig", "/nonexistent", "--listen", "1.2.3:53"], "--listen: '1.2.3:53' is not IP[:PORT]"),
    (["dns", "--kubeconfig", "/nonexistent", "--listen", "127.0.0.1:99999"], "--listen: '127.0.0.1:99999'"),
    (["dns", "--kubeconfig", "/nonexistent", "--upstream", "dns.example"], "--upstream: 'dns.example'"),
    (["dns", "--kubeconfig", "/nonexistent", "--listen", "127.0.0.1:5353", "--upstream", "10.0.0.2"],
     "/nonexistent"),
    (["proxy", "--kubeconfig", "/nonexistent"], "/nonexistent"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_addresses_and_the_hosts_resolver(tmp_path):
    assert parse_address("10.0.0.2", 53, "x") == ("10.0.0.2", 53)
    assert parse_address("127.0.0.1:5353", 53, "x") == ("127.0.0.1", 5353)
    assert parse_address("[::1]:5353", 53, "x") == ("::1", 5353)
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch lan\nnameserver 10.96.0.10\nnameserver 192.0.2.53\n")
    assert resolv_conf_nameserver(conf) == "10.96.0.10"
    assert resolv_conf_nameserver(conf, avoid="10.96.0.10") == "192.0.2.53"   # never forward to ourselves
    assert resolv_conf_nameserver(tmp_path / "missing") is None
