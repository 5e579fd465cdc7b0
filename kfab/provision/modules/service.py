"""service (and Ansible's systemd): a systemd unit masked/unmasked, enabled/disabled and
started/stopped/restarted/reloaded. A daemon-reload comes first when this run changed unit files on the host
(or when asked; with no name, that is all the task does)."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, q

RUNNING = ("active", "activating", "reloading")


def plan(args, host, files):
    if host.unit_files_changed or as_bool(args["daemon_reload"]):
        # As Ansible's systemd: the reload itself is no change (the unit file task that made it needed was).
        yield Command("systemctl daemon-reload", daemon_reload=True, changes=False)
    if args["name"] is None:
        if not as_bool(args["daemon_reload"]):
            yield Fail("service needs 'name' (or daemon_reload: true alone)")
        return
    name = str(args["name"])
    unit = host.unit(name)
    if args["masked"] is not None:
        masked = unit.enabled == "masked"
        if as_bool(args["masked"]) and not masked:
            yield Command(f"systemctl mask {q(name)}")
            return
        if not as_bool(args["masked"]) and masked:
            yield Command(f"systemctl unmask {q(name)}")
            unit = type(unit)(unit.exists, "disabled", unit.active)
    if not unit.exists:
        if host.check:
            # In check mode the package or unit file an earlier task would install is not there yet.
            yield Command(f"systemctl start {q(name)}")
            return
        yield Fail(f"unit {name} not found")
        return
    if args["enabled"] is not None:
        want = as_bool(args["enabled"])
        if want and unit.enabled not in ("enabled", "static", "alias", "indirect", "generated"):
            yield Command(f"systemctl enable {q(name)}")
        elif not want and unit.enabled == "enabled":
            yield Command(f"systemctl disable {q(name)}")
    state = args["state"]
    if state == "started" and unit.active not in RUNNING:
        yield Command(f"systemctl start {q(name)}")
    elif state == "stopped" and unit.active in RUNNING:
        yield Command(f"systemctl stop {q(name)}")
    elif state == "restarted":
        yield Command(f"systemctl restart {q(name)}")
    elif state == "reloaded":
        yield Command(f"systemctl reload-or-restart {q(name)}")


MODULE = Module("service", plan, {
    "name": Arg(), "masked": Arg(),
    "state": Arg(choices=("started", "stopped", "restarted", "reloaded")),
    "enabled": Arg(), "daemon_reload": Arg(default=False),
})
