"""pip: Python packages (any index: extra_args such as --index-url) in a virtualenv or for an interpreter,
compared by name and version with what `pip list` reports, as ansible.builtin.pip's common arguments."""

from __future__ import annotations

import json
import re

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_list, q


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wanted(spec: str, version) -> tuple[str, str | None]:
    """('name', 'version' or None) from `name`, `name==1.2` or name + version."""
    name, sep, pinned = spec.partition("==")
    return name.strip(), (pinned.strip() if sep else (str(version) if version is not None else None))


def plan(args, host, files):
    if args["requirements"]:
        yield Fail("pip: requirements files are not supported by kfab; list the packages in 'name'")
        return
    names = as_list(args["name"])
    if not names:
        yield Fail("pip needs 'name'")
        return
    if args["version"] is not None and len(names) != 1:
        yield Fail("pip: 'version' needs exactly one name")
        return
    venv = args["virtualenv"]
    python = f"{venv}/bin/python" if venv else (args["executable"] or "python3")
    if venv and host.file(python) is None:
        yield Command(f"{args['virtualenv_command']} {q(venv)}")
        listed = {}
    else:
        out = host.query(f"{q(python)} -m pip list --format=json --disable-pip-version-check")
        try:
            listed = {_norm(p["name"]): p["version"] for p in json.loads(out or "[]")}
        except (ValueError, KeyError, TypeError):
            yield Fail(f"cannot read the installed packages of {python} (is pip there?)")
            return
    extra = f" {args['extra_args']}" if args["extra_args"] else ""
    if args["state"] == "absent":
        present = [_wanted(n, None)[0] for n in names if _norm(_wanted(n, None)[0]) in listed]
        if present:
            yield Command(f"{q(python)} -m pip uninstall -y " + " ".join(q(n) for n in present))
        return
    missing = []
    for spec in names:
        name, version = _wanted(spec, args["version"])
        have = listed.get(_norm(name))
        if have is None or (version is not None and have != version):
            missing.append(f"{name}=={version}" if version else name)
    if missing:
        yield Command(f"{q(python)} -m pip install --disable-pip-version-check{extra} "
                      + " ".join(q(m) for m in missing))


MODULE = Module("pip", plan, {
    "name": Arg(), "version": Arg(), "state": Arg(choices=("present", "absent"), default="present"),
    "virtualenv": Arg(), "virtualenv_command": Arg(default="python3 -m venv"), "executable": Arg(),
    "extra_args": Arg(), "requirements": Arg(),
})
