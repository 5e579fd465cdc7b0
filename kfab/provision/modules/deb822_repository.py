"""deb822_repository: an apt source as /etc/apt/sources.list.d/<name>.sources (deb822 format, as
ansible.builtin.deb822_repository writes it) with its key in /etc/apt/keyrings/<name>.asc when signed_by is
the key itself (no apt-key); apt's lists are refreshed after a change, so the next package task sees it."""

from __future__ import annotations

from kfab.provision.modules.base import Arg, Command, Fail, Module, as_list, put_file, q
from kfab.provision.modules.package import APT_UPDATE

SOURCES = "/etc/apt/sources.list.d"
KEYRINGS = "/etc/apt/keyrings"


def sources_text(args: dict, key_path: str | None) -> str:
    fields = [("X-Repolib-Name", args["name"]), ("Types", " ".join(as_list(args["types"]))),
              ("URIs", " ".join(as_list(args["uris"]))), ("Suites", " ".join(as_list(args["suites"])))]
    if args["components"]:
        fields.append(("Components", " ".join(as_list(args["components"]))))
    if args["architectures"]:
        fields.append(("Architectures", " ".join(as_list(args["architectures"]))))
    if key_path or args["signed_by"]:
        fields.append(("Signed-By", key_path or str(args["signed_by"])))
    if args["enabled"] is not None:
        fields.append(("Enabled", "yes" if args["enabled"] in (True, "yes", "true") else "no"))
    return "".join(f"{k}: {v}\n" for k, v in fields)


def plan(args, host, files):
    name = str(args["name"])
    path, key_path = f"{SOURCES}/{name}.sources", None
    if args["state"] == "absent":
        removed = [p for p in (path, f"{KEYRINGS}/{name}.asc") if host.file(p) is not None]
        if removed:
            yield Command("rm -f " + " ".join(q(p) for p in removed))
        return
    if not args["uris"] or not args["suites"]:
        yield Fail("deb822_repository needs 'uris' and 'suites'")
        return
    signed_by = str(args["signed_by"] or "")
    changed = False
    if "BEGIN PGP PUBLIC KEY BLOCK" in signed_by:
        key_path = f"{KEYRINGS}/{name}.asc"
        if host.file(KEYRINGS) is None:
            yield Command(f"install -d -m 0755 {KEYRINGS}")
        for change in put_file(host, key_path, (signed_by.strip() + "\n").encode(), "0644"):
            changed = True
            yield change
    for change in put_file(host, path, sources_text(args, key_path).encode(), "0644"):
        changed = True
        yield change
    if changed:
        yield Command(APT_UPDATE)


MODULE = Module("deb822_repository", plan, {
    "name": Arg(required=True), "uris": Arg(), "suites": Arg(), "components": Arg(), "types": Arg(default=["deb"]),
    "architectures": Arg(), "signed_by": Arg(), "enabled": Arg(), "state": Arg(choices=("present", "absent"),
                                                                                default="present"),
})
