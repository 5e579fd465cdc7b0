"""Ansible's inventories as they are: YAML (`all: {hosts, children, vars}`, nested groups), INI (see
inventory_ini.py), host ranges (`node[01:04]`), a directory of such files merged, and the `group_vars/`
and `host_vars/` directories beside the inventory file (or inside the inventory directory).

Variable layers follow Ansible's precedence (lowest first):
  inventory-file group vars (all, then groups parents-before-children, same depth by name)
  < group_vars/all < group_vars/<group> (same order) < inventory-file host vars < host_vars/<host>.
Role defaults sit below all of these and play vars / extra vars above; see variables.py.
Values are kept raw here: Jinja2 in them is resolved lazily when a task uses them.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory_ini import expand_hosts, looks_like_ini, parse_ini
from kfab.provision.vault import Vault, decrypt_text, is_encrypted
from kfab.provision.yamlfile import line_of, load_yaml, parse_yaml

GROUP_KEYS = ("hosts", "children", "vars")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass
class Group:
    name: str
    vars: dict = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    depth: int = 0


@dataclass
class Layer:
    """One source of variables (a file or an inventory section), for precedence and error messages."""
    source: str
    vars: dict


@dataclass
class Host:
    name: str
    groups: list[str] = field(default_factory=list)     # every group it is in, 'all' first, parents first
    layers: list[Layer] = field(default_factory=list)   # inventory-level variable layers, lowest first

    @property
    def vars(self) -> dict:
        """Inventory-level variables merged by precedence (raw, Jinja2 not yet resolved)."""
        merged: dict = {}
        for layer in self.layers:
            merged.update(layer.vars)
        return merged

    def origin(self, key: str) -> str | None:
        for layer in reversed(self.layers):
            if key in layer.vars:
                return layer.source
        return None

    # Connection settings, spelled as Ansible spells them so existing inventories work.
    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host", self.name))

    @property
    def user(self) -> str:
        return str(self.vars.get("ansible_user", "root"))

    @property
    def port(self) -> int:
        return int(self.vars.get("ansible_port", 22))

    @property
    def key_file(self) -> str | None:
        value = self.vars.get("ansible_ssh_private_key_file")
        return str(value) if value else None


@dataclass
class Inventory:
    path: Path          # the inventory file, or directory
    hosts: dict[str, Host]
    groups: dict[str, Group]

    @property
    def base(self) -> Path:
        """Where group_vars/, host_vars/ and relative paths in variables are taken from."""
        return self.path if self.path.is_dir() else self.path.parent

    def group_hosts(self, group: str) -> list[str]:
        """Hosts of a group and of all its descendants, in inventory order."""
        seen: dict[str, None] = {}

        def walk(name: str) -> None:
            g = self.groups[name]
            for h in g.hosts:
                seen.setdefault(h)
            for child in g.children:
                walk(child)

        walk(group)
        return list(seen)

    def select(self, pattern: str | None) -> list[str]:
        """Hosts matching an Ansible host pattern: `a,b`, `a:b`, groups, globs, `!excluded`, `&also`."""
        if pattern is None:
            return list(self.hosts)
        chosen: list[str] = []
        parts = [p.strip() for p in re.split(r"[,:]", str(pattern)) if p.strip()]
        for part in [p for p in parts if p[0] not in "!&"]:
            for h in self._match(part):
                if h not in chosen:
                    chosen.append(h)
        for part in [p for p in parts if p[0] == "&"]:
            keep = set(self._match(part[1:]))
            chosen = [h for h in chosen if h in keep]
        for part in [p for p in parts if p[0] == "!"]:
            drop = set(self._match(part[1:]))
            chosen = [h for h in chosen if h not in drop]
        return chosen

    def _match(self, word: str) -> list[str]:
        if word in self.groups:
            return self.group_hosts(word)
        if word in self.hosts:
            return [word]
        found: list[str] = []
        for g in self.groups:
            if fnmatch.fnmatchcase(g, word):
                found += [h for h in self.group_hosts(g) if h not in found]
        found += [h for h in self.hosts if fnmatch.fnmatchcase(h, word) and h not in found]
        return found


# Files of an inventory directory that are not inventories (as Ansible's inventory_ignore_extensions).
IGNORED_SUFFIXES = (".retry", ".pyc", ".pyo", ".orig", ".cfg", ".md", ".txt", "~")


def load_inventory(path: str | Path, vault: Vault | None = None) -> Inventory:
    """Read an inventory file (YAML or INI) or a directory of them, and the group_vars/ and host_vars/
    beside it."""
    path = Path(path)
    if path.is_dir():
        files = [f for f in sorted(path.iterdir()) if f.is_file() and not f.name.startswith(".")
                 and not f.name.endswith(IGNORED_SUFFIXES)]
        if not files:
            raise ProvisionError("inventory directory has no inventory files", file=str(path))
    elif path.is_file():
        files = [path]
    else:
        raise ProvisionError("inventory file not found", file=str(path))
    loader = _InventoryLoader(path, vault)
    for file in files:
        loader.file = str(file)
        loader.read(_inventory_data(file, vault))
    loader.file = str(path)
    return loader.build()


def _inventory_data(path: Path, vault: Vault | None) -> dict:
    text = path.read_text(errors="replace")
    if is_encrypted(text):
        text = decrypt_text(text, vault, str(path), None)
    if path.suffix not in (".yml", ".yaml", ".json") and looks_like_ini(text):
        return parse_ini(text, str(path))
    data = parse_yaml(text, str(path), vault)
    if data is None:
        raise ProvisionError("inventory is empty", file=str(path))
    if not isinstance(data, dict):
        raise ProvisionError("inventory must be a mapping of groups, e.g. 'all: {hosts: ..., children: ...}' "
                             "(or Ansible's INI format: [group] sections of host lines)",
                             file=str(path), line=line_of(data))
    return data


class _InventoryLoader:
    def __init__(self, path: Path, vault: Vault | None = None):
        self.path = path
        self.vault = vault
        self.file = str(path)
        self.groups: dict[str, Group] = {"all": Group("all")}
        self.host_vars_inline: dict[str, dict] = {}
        self.host_order: list[str] = []

    def fail(self, message: str, node=None, key=None) -> ProvisionError:
        return ProvisionError(message, file=self.file, line=line_of(node, key))

    def read(self, data: dict) -> None:
        for name, body in data.items():
            self._group(str(name), body, parent=None if name == "all" else "all", node=data)

    def _group(self, name: str, body, parent: str | None, node) -> None:
        if not _NAME.match(name):
            raise self.fail(f"invalid group name {name!r}", node)
        group = self.groups.setdefault(name, Group(name))
        if parent and parent not in group.parents:
            if name == "all":
                raise self.fail("group 'all' cannot be a child of another group", node)
            group.parents.append(parent)
            self.groups[parent].children.append(name)
        if body is None:
            return
        if not isinstance(body, dict):
            raise self.fail(f"group '{name}' must be a mapping with hosts/children/vars, "
                            f"not {type(body).__name__}", node)
        for key in body:
            if key not in GROUP_KEYS:
                raise self.fail(f"group '{name}': unknown key '{key}' (expected one of: "
                                f"{', '.join(GROUP_KEYS)})", body, key)
        group_vars = body.get("vars") or {}
        if not isinstance(group_vars, dict):
            raise self.fail(f"group '{name}': 'vars' must be a mapping", body)
        group.vars.update(group_vars)
        hosts = body.get("hosts") or {}
        if isinstance(hosts, list):
            raise self.fail(f"group '{name}': 'hosts' must be a mapping of host names "
                            f"(write 'hostname:' with a colon, vars below it)", body, "hosts")
        if not isinstance(hosts, dict):
            raise self.fail(f"group '{name}': 'hosts' must be a mapping", body)
        for pattern, hvars in hosts.items():
            try:
                names = expand_hosts(str(pattern))
            except ValueError as exc:
                raise self.fail(f"group '{name}': host {pattern!r}: {exc}", hosts, pattern) from None
            for host in names:
                if not _NAME.match(host):
                    raise self.fail(f"group '{name}': invalid host name {host!r}", hosts)
                if hvars is not None and not isinstance(hvars, dict):
                    raise self.fail(f"host '{host}': variables must be a mapping, not {type(hvars).__name__}",
                                    hosts, pattern)
                if host not in self.host_order:
                    self.host_order.append(host)
                self.host_vars_inline.setdefault(host, {}).update(hvars or {})
                if host not in group.hosts:
                    group.hosts.append(host)
        children = body.get("children") or {}
        if not isinstance(children, dict):
            raise self.fail(f"group '{name}': 'children' must be a mapping of group names", body)
        for child, child_body in children.items():
            self._group(str(child), child_body, parent=name, node=children)

    def build(self) -> Inventory:
        if not self.host_order:
            raise ProvisionError("inventory lists no hosts", file=self.file)
        for name in self.host_order:
            if name in self.groups:
                raise ProvisionError(f"'{name}' is both a host and a group name", file=self.file)
        self._set_depths()
        base = self.path if self.path.is_dir() else self.path.parent
        group_files = {g: _vars_from_dir(base / "group_vars", g, self.vault) for g in self.groups}
        hosts: dict[str, Host] = {}
        for name in self.host_order:
            member_of = [g for g in self.groups.values() if self._contains(g.name, name)]
            member_of.sort(key=lambda g: (g.depth, g.name != "all", g.name))
            host = Host(name, groups=[g.name for g in member_of])
            for g in member_of:
                if g.vars:
                    host.layers.append(Layer(f"{self.file} (group {g.name} vars)", g.vars))
            for g in member_of:
                host.layers += group_files[g.name]
            if self.host_vars_inline.get(name):
                host.layers.append(Layer(f"{self.file} (host {name})", self.host_vars_inline[name]))
            host.layers += _vars_from_dir(base / "host_vars", name, self.vault)
            _check_connection_vars(host)
            hosts[name] = host
        # Hosts listed only under children groups still belong to 'all' (Ansible's implicit membership).
        return Inventory(self.path, hosts, self.groups)

    def _contains(self, group: str, host: str, trail: tuple = ()) -> bool:
        if group == "all":
            return True
        g = self.groups[group]
        return host in g.hosts or any(self._contains(c, host, trail) for c in g.children)

    def _set_depths(self) -> None:
        def depth(name: str, trail: tuple) -> int:
            if name in trail:
                raise ProvisionError(f"group '{name}' is its own ancestor: {' -> '.join(trail + (name,))}",
                                     file=self.file)
            g = self.groups[name]
            return 0 if not g.parents else 1 + max(depth(p, trail + (name,)) for p in g.parents)

        for g in self.groups.values():
            g.depth = depth(g.name, ())


def _vars_from_dir(directory: Path, name: str, vault: Vault | None = None) -> list[Layer]:
    """group_vars/<name>.yml (or .yaml, .json, no extension) or a directory group_vars/<name>/*.yml."""
    layers: list[Layer] = []
    candidates = [directory / f"{name}{ext}" for ext in (".yml", ".yaml", ".json", "")]
    for path in candidates:
        if path.is_file():
            layers.append(_vars_file(path, vault))
        elif path.is_dir():
            for sub in sorted(path.iterdir()):
                if sub.is_file() and sub.suffix in (".yml", ".yaml", ".json"):
                    layers.append(_vars_file(sub, vault))
    return layers


def _vars_file(path: Path, vault: Vault | None = None) -> Layer:
    data = load_yaml(path, vault)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProvisionError(f"variables file must be a mapping, not {type(data).__name__}", file=str(path))
    return Layer(str(path), data)


def _check_connection_vars(host: Host) -> None:
    port = host.vars.get("ansible_port")
    if port is not None and not (isinstance(port, str) and "{{" in port):
        try:
            ok = 0 < int(port) < 65536
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ProvisionError(f"host '{host.name}': ansible_port must be a port number, got {port!r}",
                                 file=host.origin("ansible_port"))
