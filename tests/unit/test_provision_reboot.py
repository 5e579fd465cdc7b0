"""The reboot module's arguments as ansible.builtin.reboot takes them (ansible-core 2.18's action plugin:
defaults, `shutdown -r <minutes> "<msg>"`, reboot_command split into binary and arguments, search_paths), and
its refusals in Ansible's words. The reboot itself (boot id, reconnect, timeouts) is tested on a real VM:
tests/lab/test_lab_vms.py."""

from __future__ import annotations

import pytest

from kfab.provision.errors import ProvisionError
from kfab.provision.modules import MODULES
from kfab.provision.modules.base import Fail, Reboot
from tests.unit.test_provision_semantics import project, registered, run


def planned(**args):
    module = MODULES["reboot"]
    return list(module.plan(module.with_defaults(args), None, None))


def test_defaults_are_ansibles():
    (change,) = planned()
    assert change == Reboot(binary="shutdown", arguments='-r 0 "Reboot initiated by Ansible"',
                            search_paths=["/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin"],
                            boot_time_command="cat /proc/sys/kernel/random/boot_id", test_command="whoami",
                            reboot_timeout=600, connect_timeout=None, post_reboot_delay=0)


def test_delay_in_whole_minutes_message_command_and_paths():
    (change,) = planned(pre_reboot_delay=150, msg="kernel update", post_reboot_delay=-5, search_paths="/opt/bin")
    assert (change.arguments, change.post_reboot_delay, change.search_paths) == \
        ('-r 2 "kernel update"', 0, ["/opt/bin"])
    (change,) = planned(reboot_command="systemctl reboot --force", pre_reboot_delay=600, connect_timeout="5")
    assert (change.binary, change.arguments, change.connect_timeout) == ("systemctl", "reboot --force", 5)


def test_bad_arguments_are_refused_in_ansibles_words():
    (fail,) = planned(search_paths=[["/sbin"]])
    assert fail == Fail("'search_paths' must be a string or flat list of strings, got [['/sbin']]")
    (fail,) = planned(reboot_timeout="soon")
    assert isinstance(fail, Fail) and "soon" in fail.message


def test_a_local_connection_is_never_rebooted_not_even_in_check_mode(tmp_path):
    project(tmp_path, """\
        - name: restart
          ansible.builtin.reboot:
          register: r
          ignore_errors: true
        - name: after
          command: "touch {{ out }}/after"
        """)
    for check in (False, True):
        runner, code, text = run(tmp_path, check=check)
        assert code == 0, text
        assert registered(runner)["r"].items() >= {
            "failed": True, "rebooted": False, "elapsed": 0, "changed": False,
            "msg": "Running reboot with local connection would reboot the control node."}.items(), text
        assert runner.stats["h1"].ignored == 1
    assert (tmp_path / "after").exists()


def test_an_unknown_argument_is_refused_when_the_play_loads(tmp_path):
    project(tmp_path, """\
        - reboot: {reboot_timeout_min: 5}
        """)
    with pytest.raises(ProvisionError, match="module 'reboot': unknown argument 'reboot_timeout_min'"):
        run(tmp_path)
