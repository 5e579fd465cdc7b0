"""YAML loading that keeps line numbers, so errors can point at the line a user must fix."""

from __future__ import annotations

from pathlib import Path

import yaml

from kfab.provision.errors import ProvisionError
from kfab.provision.vault import Vault, decrypt_text, is_encrypted


class LineDict(dict):
    """A YAML mapping that remembers the line it started on (1-based)."""

    line: int | None = None
    key_lines: dict | None = None

    def line_of_key(self, key) -> int | None:
        return (self.key_lines or {}).get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            # PyYAML silently keeps the last duplicate; Ansible warns. A duplicate key is almost always a typo.
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        try:
            result.key_lines[key] = key_node.start_mark.line + 1
        except TypeError:  # an unhashable key; YAML allows it, we will refuse it later
            pass
    return result


class VaultText(str):
    """A `!vault |` string as written (still encrypted), with its line; decrypted by reveal()."""
    line: int | None = None


def _construct_vault(loader: _LineLoader, node: yaml.ScalarNode) -> VaultText:
    text = VaultText(loader.construct_scalar(node))
    text.line = node.start_mark.line + 1
    return text


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor("!vault", _construct_vault)


def parse_yaml(text: str, file: str, vault: Vault | None = None):
    """YAML with line numbers. Text encrypted by ansible-vault (a whole file, or `!vault` strings in it)
    is decrypted with the run's vault passwords; without them it is an error naming file and line."""
    whole_file_secret = is_encrypted(text)
    if whole_file_secret:
        text = decrypt_text(text, vault, file, None)
    try:
        data = _reveal(yaml.load(text, Loader=_LineLoader), vault, file)  # noqa: S506 - a SafeLoader subclass
        if whole_file_secret and vault is not None:
            vault.remember(data)
        return data
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if "<stream end>" in problem and getattr(exc, "context_mark", None):
            mark = exc.context_mark  # "found end of file": where the unclosed thing began is more useful
        raise ProvisionError(f"invalid YAML: {problem}", file=file,
                             line=mark.line + 1 if mark else None) from None


def load_yaml(path: Path | str, vault: Vault | None = None):
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProvisionError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return parse_yaml(text, str(path), vault)


def _reveal(value, vault: Vault | None, file: str):
    if isinstance(value, VaultText):
        plain = decrypt_text(str(value), vault, file, value.line)
        if vault is not None:
            vault.remember(plain)
        return plain
    if isinstance(value, dict):
        for key in value:
            value[key] = _reveal(value[key], vault, file)
    elif isinstance(value, list):
        value[:] = [_reveal(v, vault, file) for v in value]
    return value


def line_of(value, key=None) -> int | None:
    if key is not None and isinstance(value, LineDict):
        return value.line_of_key(key)
    return getattr(value, "line", None)
