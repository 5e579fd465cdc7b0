"""template: render a Jinja2 template from the role's templates/ (or the shared templates/) to a file."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, FILE_ARGS, Module, file_attributes, put_file


def plan(args, host, files):
    content = files.render_template(args["src"]).encode()
    yield from put_file(host, args["dest"], content, **file_attributes(args))


MODULE = Module("template", plan, {
    "src": Arg(required=True), "dest": Arg(required=True),
    **FILE_ARGS,
})
