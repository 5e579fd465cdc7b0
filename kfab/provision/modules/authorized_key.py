"""authorized_key: one SSH public key in (or out of) a user's ~/.ssh/authorized_keys, the file 0600 and
~/.ssh 0700, both owned by the user (ansible.posix.authorized_key's common arguments)."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, put_file, q


def _key_id(line: str) -> tuple[str, str] | None:
    """(type, base64) of a key line, ignoring options before it and the comment after it."""
    words = line.split()
    for i, word in enumerate(words):
        if word.startswith(("ssh-", "ecdsa-", "sk-")) and i + 1 < len(words):
            return word, words[i + 1]
    return None


def plan(args, host, files):
    user = host.user(str(args["user"]))
    if user is None:
        yield Fail(f"user {args['user']} does not exist")
        return
    keys = [k.strip() for k in str(args["key"]).splitlines() if k.strip()]
    wanted = [(_key_id(k), k) for k in keys]
    if any(kid is None for kid, _ in wanted):
        yield Fail("key is not an SSH public key line ('<type> <base64> [comment]')")
        return
    ssh_dir = f"{user['home']}/.ssh"
    path = args["path"] or f"{ssh_dir}/authorized_keys"
    current = host.file(path, content=True)
    lines = current.content.decode().splitlines() if current is not None and current.content else []
    present = args["state"] == "present"
    ids = {kid for kid, _ in wanted}
    if present:
        kept = [line for line in lines if _key_id(line) in ids or not as_bool(args["exclusive"])]
        have = {_key_id(line) for line in kept}
        kept += [k for kid, k in wanted if kid not in have]
    else:
        kept = [line for line in lines if _key_id(line) not in ids]
    if kept == lines and current is not None:
        return
    if not present and current is None:
        return
    if args["path"] is None and host.file(ssh_dir) is None:
        yield Command(f"install -d -m 0700 -o {q(args['user'])} -g {q(user['group'])} {q(ssh_dir)}")
    text = "\n".join(kept) + ("\n" if kept else "")
    yield from put_file(host, path, text.encode(), "0600", str(args["user"]), user["group"])


MODULE = Module("authorized_key", plan, {
    "user": Arg(required=True), "key": Arg(required=True), "state": Arg(choices=("present", "absent"),
                                                                          default="present"),
    "path": Arg(), "exclusive": Arg(default=False), "manage_dir": Arg(default=True),
})
