"""user: a local account (uid, primary group, extra groups, shell, home, password). `password` is the
crypted hash as it goes into /etc/shadow (`password_hash`), set again when it differs unless
`update_password: on_create`."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Module, as_bool, as_list, q


def plan(args, host, files):
    name = str(args["name"])
    current = host.user(name)
    if args["state"] == "absent":
        if current is not None:
            yield Command(f"userdel {'-r ' if as_bool(args['remove']) else ''}{q(name)}")
        return
    flags = []
    groups = as_list(args["groups"])
    if current is None:
        if args["uid"] is not None:
            flags.append(f"-u {int(args['uid'])}")
        if args["group"]:
            flags.append(f"-g {q(args['group'])}")
        if groups:
            flags.append(f"-G {q(','.join(groups))}")
        if args["shell"]:
            flags.append(f"-s {q(args['shell'])}")
        if args["home"]:
            flags.append(f"-d {q(args['home'])}")
        if as_bool(args["system"]):
            flags.append("--system")
        flags.append("-m" if as_bool(args["create_home"]) else "-M")
        if args["password"] is not None:
            flags.append(f"-p {q(str(args['password']))}")
        yield Command(f"useradd {' '.join(flags)} {q(name)}")
        return
    if args["uid"] is not None and int(args["uid"]) != current["uid"]:
        flags.append(f"-u {int(args['uid'])}")
    if args["group"] and args["group"] != current["group"]:
        flags.append(f"-g {q(args['group'])}")
    if groups:
        missing = [g for g in groups if g not in current["groups"]]
        if as_bool(args["append"]):
            if missing:
                flags.append(f"-a -G {q(','.join(missing))}")
        elif set(groups) != set(current["groups"]) - {current["group"]}:
            flags.append(f"-G {q(','.join(groups))}")
    if args["shell"] and args["shell"] != current["shell"]:
        flags.append(f"-s {q(args['shell'])}")
    if args["home"] and args["home"] != current["home"]:
        flags.append(f"-d {q(args['home'])}")
    if args["password"] is not None and args["update_password"] == "always":
        shadow = (host.query(f"getent shadow {q(name)}") or "").split(":")
        if len(shadow) < 2 or shadow[1] != str(args["password"]):
            flags.append(f"-p {q(str(args['password']))}")
    if flags:
        yield Command(f"usermod {' '.join(flags)} {q(name)}")


MODULE = Module("user", plan, {
    "name": Arg(required=True), "state": Arg(choices=("present", "absent"), default="present"),
    "uid": Arg(), "group": Arg(), "groups": Arg(), "append": Arg(default=False), "shell": Arg(),
    "home": Arg(), "system": Arg(default=False), "create_home": Arg(default=True), "remove": Arg(default=False),
    "password": Arg(), "update_password": Arg(choices=("always", "on_create"), default="always"),
})
