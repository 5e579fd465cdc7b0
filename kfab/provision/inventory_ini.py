"""Ansible's INI inventory format, read into the same shape as a YAML inventory, and host ranges
(`node[01:04]`, `[a:c]`, `[1:9:2]`) as both formats write them.

INI, as ansible-core's ini inventory plugin reads it: hosts before any section are ungrouped;
`[group]` lists hosts with inline `key=value` variables (Python literals where they parse: 22 is a
number, yes stays a string) and `host:port`; `[group:vars]` values are strings; `[group:children]` names
child groups."""

from __future__ import annotations

import ast
import re
import shlex
import string

from kfab.provision.errors import ProvisionError

_RANGE = re.compile(r"\[([^\]:]+):([^\]:]+)(?::(\d+))?\]")
_SECTION = re.compile(r"\[([^\]:\s]+)(?::(\w+))?\]")


def expand_hosts(pattern: str) -> list[str]:
    """`web[01:03].lan` -> web01.lan, web02.lan, web03.lan (zero padding kept); `[a:c]` letters."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[:match.start()], pattern[match.end():]
    first, last, step = match.group(1), match.group(2), int(match.group(3) or 1)
    if first.isdigit() and last.isdigit():
        width = len(first) if first.startswith("0") else 0
        values = [str(n).zfill(width) for n in range(int(first), int(last) + 1, step)]
    elif len(first) == len(last) == 1 and first.isalpha() and last.isalpha():
        letters = string.ascii_letters
        values = list(letters[letters.index(first):letters.index(last) + 1:step])
    else:
        raise ValueError(f"host range [{first}:{last}] must be numbers or single letters")
    if not values:
        raise ValueError(f"host range [{first}:{last}] is empty")
    return [name for v in values for name in expand_hosts(head + v + tail)]


def parse_ini(text: str, file: str) -> dict:
    """An INI inventory as the YAML shape: {group: {hosts: {name: vars}, vars: {...}, children: {...}}}."""
    groups: dict[str, dict] = {}
    current, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue

        def fail(message: str) -> ProvisionError:
            return ProvisionError(message, file=file, line=number)

        if line.startswith("["):
            section = _SECTION.fullmatch(line)
            if section is None:
                raise fail(f"invalid section header {line!r} (expected [group], [group:vars] or [group:children])")
            current, kind = section.group(1), section.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise fail(f"[{current}:{kind}]: a section is [group], [group:vars] or [group:children]")
            groups.setdefault(current, {})
            continue
        body = groups.setdefault(current, {})
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise fail(f"[{current}:vars] expects key=value, got {line!r}")
            body.setdefault("vars", {})[key.strip()] = value.strip()
        elif kind == "children":
            body.setdefault("children", {})[line.split()[0]] = None
        else:
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                raise fail(f"cannot split {line!r}: {exc}") from None
            name, host_vars = words[0], {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise fail(f"host {name}: expected key=value, got {word!r}")
                host_vars[key] = _literal(value)
            port = re.fullmatch(r"([^:\[\]]+):(\d+)", name)
            if port:
                name, host_vars = port.group(1), {"ansible_port": int(port.group(2))} | host_vars
            try:
                names = expand_hosts(name)
            except ValueError as exc:
                raise fail(str(exc)) from None
            for host in names:
                body.setdefault("hosts", {})[host] = dict(host_vars)
    if not groups.get("ungrouped"):
        groups.pop("ungrouped", None)
    return groups


def _literal(value: str):
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    return parsed if isinstance(parsed, (int, float, bool, list, dict, tuple)) or parsed is None else value


def looks_like_ini(text: str) -> bool:
    """Ansible picks the plugin by trying; kfab decides by the first meaningful line: a section header or a
    `host key=value` line is INI, anything else is YAML."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "---")):
            continue
        return line.startswith("[") or (":" not in line.split()[0] or bool(re.match(r"^[^:\s]+:\d+(\s|$)", line)))
    return False
