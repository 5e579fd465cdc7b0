"""reboot: restart the host, wait for it to come back with a new boot id, reconnect and run a test command,
as ansible.builtin.reboot (an action plugin there: the controller does the waiting). Arguments, defaults,
results (`rebooted`, `elapsed` in whole seconds) and failure messages are Ansible's; the waiting itself is
kfab/provision/rebooting.py, run by the runner with the host's connection."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Fail, Module, Reboot

DEFAULT_SEARCH_PATHS = ["/sbin", "/bin", "/usr/sbin", "/usr/bin", "/usr/local/sbin"]
DEFAULT_MESSAGE = "Reboot initiated by Ansible"


def plan(args, host, files):
    try:
        timeout = int(args["reboot_timeout"])
        connect_timeout = None if args["connect_timeout"] in (None, "") else int(args["connect_timeout"])
        # Negative delays count as 0, as Ansible's _check_delay.
        pre_delay, post_delay = (max(0, int(args[k])) for k in ("pre_reboot_delay", "post_reboot_delay"))
    except (TypeError, ValueError) as exc:
        yield Fail(f"reboot: an argument that must be a whole number of seconds is not: {exc}")
        return
    paths = args["search_paths"]
    if isinstance(paths, str):
        paths = [p.strip() for p in paths.split(",") if p.strip()]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        yield Fail(f"'search_paths' must be a string or flat list of strings, got {args['search_paths']}")
        return
    command = args["reboot_command"]
    if command is not None:
        if not isinstance(command, str):
            yield Fail(f"Invalid value given for 'reboot_command': '{type(command).__name__}' cannot be "
                       "converted to a str.")
            return
        binary, _, arguments = command.partition(" ")
    else:
        # Linux's shutdown takes whole minutes: a delay under 60 s is "now" (Ansible does the same).
        binary, arguments = "shutdown", f'-r {pre_delay // 60} "{args["msg"]}"'
    yield Reboot(binary=binary, arguments=arguments, search_paths=paths,
                 boot_time_command=str(args["boot_time_command"]), test_command=str(args["test_command"]),
                 reboot_timeout=timeout, connect_timeout=connect_timeout, post_reboot_delay=post_delay)


MODULE = Module("reboot", plan, {
    "reboot_timeout": Arg(default=600), "connect_timeout": Arg(), "test_command": Arg(default="whoami"),
    "pre_reboot_delay": Arg(default=0), "post_reboot_delay": Arg(default=0), "msg": Arg(default=DEFAULT_MESSAGE),
    "reboot_command": Arg(), "boot_time_command": Arg(default="cat /proc/sys/kernel/random/boot_id"),
    "search_paths": Arg(default=DEFAULT_SEARCH_PATHS),
}, doc="restart the host and wait until it answers again (ansible.builtin.reboot)")
