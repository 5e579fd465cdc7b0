"""copy: a file from the role's files/ (src) or inline text (content) to the host; with `force: false`
an existing file is left as it is (Ansible's way to seed a file that is edited afterwards)."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, FILE_ARGS, Fail, Module, as_bool, file_attributes, put_file


def plan(args, host, files):
    if (args["src"] is None) == (args["content"] is None):
        yield Fail("copy needs exactly one of 'src' or 'content'")
        return
    if not as_bool(args["force"]) and host.file(args["dest"]) is not None:
        return
    content = files.read_file(args["src"]) if args["src"] is not None else str(args["content"]).encode()
    yield from put_file(host, args["dest"], content, **file_attributes(args))


MODULE = Module("copy", plan, {
    "src": Arg(), "content": Arg(), "dest": Arg(required=True),
    **FILE_ARGS, "force": Arg(default=True),
})
