"""venv: a Python virtual environment on the host with packages installed from a wheelhouse — a
directory of wheels on the machine running kfab — by `pip install --no-index`, so hosts need no PyPI.
A stamp file in the venv records what was installed; the same wheelhouse again is `ok`."""

from __future__ import annotations

import hashlib

from kfab.provision.modules.base import Arg, Command, Fail, Module, PutFile, as_list, q

STAMP = ".kfab-wheelhouse"


def wheelhouse_digest(wheels: dict[str, bytes], packages: list[str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(wheels):
        digest.update(f"{name} {hashlib.sha256(wheels[name]).hexdigest()}\n".encode())
    digest.update((" ".join(packages)).encode())
    return digest.hexdigest()


def plan(args, host, files):
    path = str(args["path"]).rstrip("/")
    packages = as_list(args["packages"])
    wheels = files.local_files(str(args["wheelhouse"]), ".whl")
    if not wheels:
        yield Fail(f"no wheels (*.whl) in {args['wheelhouse']}")
        return
    stamp = (wheelhouse_digest(wheels, packages) + "\n").encode()
    installed = host.file(f"{path}/{STAMP}", content=True)
    python = host.file(f"{path}/bin/python")
    if python is not None and installed is not None and installed.content == stamp:
        return
    if python is None:
        yield Command(f"{q(args['python'])} -m venv {q(path)}")
    wheel_dir = f"{path}/wheelhouse"
    yield Command(f"rm -rf {q(wheel_dir)} && mkdir -p {q(wheel_dir)}")
    for name in sorted(wheels):
        yield PutFile(f"{wheel_dir}/{name}", wheels[name], "0644")
    # --force-reinstall: a rebuilt wheel often keeps its version number, and pip would skip it.
    yield Command(f"{q(path + '/bin/pip')} install -q --no-index --find-links {q(wheel_dir)} "
                  f"--upgrade --force-reinstall " + " ".join(q(p) for p in packages))
    yield PutFile(f"{path}/{STAMP}", stamp, "0644")


MODULE = Module("venv", plan, {
    "path": Arg(required=True), "wheelhouse": Arg(required=True), "packages": Arg(required=True),
    "python": Arg(default="python3"),
}, doc="path of the venv, wheelhouse (local directory of wheels), packages to install from it")
