"""get_url: a file downloaded by the host (curl) to dest, as ansible.builtin.get_url: with a `checksum`
(sha256:..., sha1:..., sha512:...) a dest that matches is left alone and a download that does not match
is refused; without one, an existing dest is kept unless `force`."""

from __future__ import annotations

import uuid

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_bool, attribute_changes, octal_mode, q

SUMS = {"sha1": "sha1sum", "sha224": "sha224sum", "sha256": "sha256sum", "sha384": "sha384sum",
        "sha512": "sha512sum", "md5": "md5sum"}


def plan(args, host, files):
    url, dest = str(args["url"]), str(args["dest"])
    algorithm, digest = None, None
    if args["checksum"]:
        algorithm, sep, digest = str(args["checksum"]).partition(":")
        if not sep or algorithm not in SUMS or not digest:
            yield Fail(f"checksum must be <algorithm>:<hex> with one of {', '.join(SUMS)}, got {args['checksum']!r}")
            return
        digest = digest.strip().lower()
    current = host.file(dest)
    if current is not None and current.kind == "directory":
        yield Fail(f"{dest} is a directory: give the file's path")
        return
    if current is not None:
        if digest is not None:
            have = (host.query(f"{SUMS[algorithm]} {q(dest)}") or "").split(" ")[0]
            fresh = have == digest
        else:
            fresh = not as_bool(args["force"])
        if fresh:
            yield from attribute_changes(dest, current, args["mode"], args["owner"], args["group"])
            return
    tmp = f"{dest}.kfab-{uuid.uuid4().hex[:8]}"
    steps = [f"curl -fsSL --retry 3 -o {q(tmp)} {q(url)}"]
    if digest is not None:
        steps.append(f"echo {q(digest + '  ' + tmp)} | {SUMS[algorithm]} -c --quiet - "
                     f"|| {{ echo 'The checksum for {dest} did not match {digest}' >&2; false; }}")
    mode = octal_mode(args["mode"]) or (current.mode if current else "0644")
    steps.append(f"chmod {mode} {q(tmp)}")
    if args["owner"] or args["group"]:
        steps.append(f"chown {q((args['owner'] or '') + (':' + args['group'] if args['group'] else ''))} {q(tmp)}")
    steps.append(f"mv -f {q(tmp)} {q(dest)}")
    yield Command(" && ".join(steps) + f" || {{ rc=$?; rm -f {q(tmp)}; exit $rc; }}")


MODULE = Module("get_url", plan, {
    "url": Arg(required=True), "dest": Arg(required=True), "checksum": Arg(), "force": Arg(default=False),
    "mode": Arg(), "owner": Arg(), "group": Arg(),
})
