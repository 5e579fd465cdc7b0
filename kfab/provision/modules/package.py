"""package: Debian packages through apt. The apt cache is updated once per host per run, and only when
something has to be installed."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Module, as_bool, as_list, q

# Lock::Timeout: wait for another apt (a fresh VM's unattended-upgrades, a second session) instead of
# failing at once on "Could not get lock".
APT_OPTIONS = "-q -y -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=300"
APT = f"DEBIAN_FRONTEND=noninteractive apt-get {APT_OPTIONS}"
# An `apt-get update` that hangs is ended and run once more: seen in the quick start, apt's http method sat
# 7 minutes on a connection the package cache had already closed (Acquire::http::Timeout did not fire).
UPDATE_TIMEOUT_S = 300


def apt_update_command(timeout_s: float = UPDATE_TIMEOUT_S) -> str:
    once = f"DEBIAN_FRONTEND=noninteractive timeout -k 10 {timeout_s} apt-get {APT_OPTIONS} update"
    return f"{once} || {once}"


APT_UPDATE = apt_update_command()


def plan(args, host, files):
    names = as_list(args["name"])
    installed = host.packages(names)
    if args["state"] == "present":
        missing = [n for n in names if not installed.get(n)]
        if missing:
            yield Command(APT_UPDATE, once="apt-update")
            extra = "" if as_bool(args["install_recommends"]) else " --no-install-recommends"
            yield Command(f"{APT}{extra} install " + " ".join(q(n) for n in missing))
    else:
        present = [n for n in names if installed.get(n)]
        if present:
            yield Command(f"{APT} remove " + " ".join(q(n) for n in present))


MODULE = Module("package", plan, {
    "name": Arg(required=True),
    "state": Arg(choices=("present", "absent"), default="present"),
    "install_recommends": Arg(default=True),
}, doc="name (one or a list), state present|absent, install_recommends")
