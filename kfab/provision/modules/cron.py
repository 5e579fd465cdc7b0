"""cron: one job in a user's crontab under a `#Ansible: <name>` line, as ansible.builtin.cron writes it,
so a crontab Ansible manages and one kfab manages read the same."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, q

SPOOL = "/var/spool/cron/crontabs"


def edit_crontab(text: str, name: str, job_line: str | None) -> str:
    """The crontab with the job named `name` replaced by job_line (None removes it); a new job is appended."""
    lines, out, found, skip = text.splitlines(), [], False, False
    for line in lines:
        if skip:
            skip = False
            continue
        if line == f"#Ansible: {name}":
            found, skip = True, True
            if job_line is not None:
                out += [line, job_line]
            continue
        out.append(line)
    if not found and job_line is not None:
        out += [f"#Ansible: {name}", job_line]
    return "\n".join(out) + ("\n" if out else "")


def plan(args, host, files):
    user, name = str(args["user"]), str(args["name"])
    present = args["state"] == "present"
    if present and not args["job"]:
        yield Fail("state=present needs 'job'")
        return
    when = args["special_time"] and f"@{args['special_time']}" or " ".join(
        str(args[k]) for k in ("minute", "hour", "day", "month", "weekday"))
    line = f"{'#' if as_bool(args['disabled']) else ''}{when} {args['job']}" if present else None
    current = host.file(f"{SPOOL}/{user}", content=True)
    before = current.content.decode() if current is not None and current.content else ""
    after = edit_crontab(before, name, line)
    if after != before:
        yield Command(f"printf '%s' {q(after)} | crontab -u {q(user)} -")


MODULE = Module("cron", plan, {
    "name": Arg(required=True), "job": Arg(), "user": Arg(default="root"),
    "state": Arg(choices=("present", "absent"), default="present"),
    "minute": Arg(default="*"), "hour": Arg(default="*"), "day": Arg(default="*"), "month": Arg(default="*"),
    "weekday": Arg(default="*"), "special_time": Arg(choices=("reboot", "yearly", "annually", "monthly", "weekly",
                                                              "daily", "hourly")),
    "disabled": Arg(default=False),
})
