"""template: render a Jinja2 template from the role's templates/ (or the shared templates/) to a file."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Module, put_file


def plan(args, host, files):
    content = files.render_template(args["src"]).encode()
    yield from put_file(host, args["dest"], content, args["mode"], args["owner"], args["group"])


MODULE = Module("template", plan, {
    "src": Arg(required=True), "dest": Arg(required=True),
    "mode": Arg(), "owner": Arg(), "group": Arg(),
})
