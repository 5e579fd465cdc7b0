"""Variables of one host: layers in precedence order, resolved lazily (Jinja2 in a value is rendered
only when something uses it, as in Ansible), with StrictUndefined and loop detection.

Precedence, lowest first (Ansible's order, for the levels kfab has): role defaults < inventory layers
(see inventory.py) < host facts < play vars < vars_files < role vars < block vars < task vars < registered
results and set_fact < role params < include vars < extra vars (-e) < magic vars (inventory_hostname,
groups, hostvars, kfab_facts...) < the loop variable. See context.RunVars.host_vars."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import jinja2
import yaml

from kfab.provision.errors import ProvisionError
from kfab.provision.inventory import Layer
from kfab.provision.templating import render_value
from kfab.provision.vault import Vault
from kfab.provision.yamlfile import load_yaml


class HostVars(Mapping):
    def __init__(self, layers: list[Layer]):
        self.layers = layers
        self._resolving: list[str] = []

    def scoped(self, source: str, extra: dict) -> "HostVars":
        """The same variables plus a top layer (a loop item, a task's own vars)."""
        return HostVars(self.layers + [Layer(source, extra)])

    def set(self, source: str, key: str, value) -> None:
        """Add a variable to the named layer (created on top if missing), e.g. a `register` result."""
        for layer in self.layers:
            if layer.source == source:
                layer.vars[key] = value
                return
        self.layers.append(Layer(source, {key: value}))

    def raw(self, key: str):
        for layer in reversed(self.layers):
            if key in layer.vars:
                return layer.vars[key], layer.source
        raise KeyError(key)

    def __getitem__(self, key: str):
        value, source = self.raw(key)
        if key in self._resolving:
            chain = " -> ".join(self._resolving[self._resolving.index(key):] + [key])
            raise ProvisionError(f"variable '{key}' refers to itself: {chain}", file=_file_of(source))
        self._resolving.append(key)
        try:
            return render_value(value, self)
        except jinja2.UndefinedError as exc:
            raise ProvisionError(f"variable '{key}': {exc.message}", file=_file_of(source)) from None
        except ProvisionError as exc:
            if not exc.file and source:
                exc.message = f"variable '{key}': {exc.message}"
            raise exc.located(file=_file_of(source)) from None
        finally:
            self._resolving.pop()

    def __contains__(self, key) -> bool:
        return any(key in layer.vars for layer in self.layers)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for layer in self.layers:
            for key in layer.vars:
                seen.setdefault(key)
        return iter(seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _file_of(source: str | None) -> str | None:
    # Layer sources read "path (group x vars)"; the file part is what the user opens.
    return source.split(" (")[0] if source else None


def parse_extra_vars(items: list[str], base: Path = Path("."), vault: Vault | None = None) -> dict:
    """`-e key=value` (several pairs may share one -e), `-e @file.yml`, or `-e '{"k": "v"}'` (YAML/JSON)."""
    result: dict = {}
    for item in items or []:
        item = item.strip()
        if item.startswith("@"):
            path = base / item[1:]
            data = load_yaml(path, vault)
            if not isinstance(data, dict):
                raise ProvisionError("extra vars file must be a mapping", file=str(path))
            result.update(data)
        elif item.startswith("{"):
            try:
                data = yaml.safe_load(item)
            except yaml.YAMLError:
                data = None
            if not isinstance(data, dict):
                raise ProvisionError(f"-e {item!r}: not a valid YAML/JSON mapping")
            result.update(data)
        else:
            for pair in _split_pairs(item):
                key, sep, value = pair.partition("=")
                if not sep or not key:
                    raise ProvisionError(f"-e {item!r}: expected key=value, @file.yml or a JSON mapping")
                result[key] = value
    return result


def _split_pairs(text: str) -> list[str]:
    import shlex
    try:
        return shlex.split(text)
    except ValueError:
        raise ProvisionError(f"-e {text!r}: unbalanced quotes") from None
