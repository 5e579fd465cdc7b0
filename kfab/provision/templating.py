"""Jinja2 for kfab: values in variables and task arguments (native types, as Ansible keeps `{{ n }}` an int)
and whole template files (always text). Both use StrictUndefined: a missing variable is an error,
never an empty string in a config file."""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import os
import re
import shlex
from collections import ChainMap
from collections.abc import Mapping
from itertools import chain, islice
from pathlib import Path

import jinja2
import jinja2.meta
import jinja2.nodes
import passlib.hash
import yaml
from jinja2.nativetypes import NativeEnvironment

from kfab.provision.errors import ProvisionError


# `{{ x | default(omit) }}`: a module argument given this value is left out, as if never written
# (Ansible's own placeholder works the same way).
OMIT = "__omit_place_holder__kfab"


def _to_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "on", "1", "y")
    return bool(value)


def _regex_replace(value, pattern, replacement="", ignorecase=False):
    return re.sub(pattern, replacement, str(value), flags=re.I if ignorecase else 0)


def _combine(dicts, recursive: bool) -> dict:
    result: dict = {}
    for d in dicts:
        for other in d if isinstance(d, list) else [d]:
            for key, value in other.items():
                if recursive and isinstance(value, dict) and isinstance(result.get(key), dict):
                    result[key] = _combine([result[key], value], True)
                else:
                    result[key] = value
    return result


def _regex_search(value, pattern, *groups, ignorecase=False, multiline=False):
    flags = (re.I if ignorecase else 0) | (re.M if multiline else 0)
    match = re.search(pattern, str(value), flags)
    if match is None:
        return None
    if not groups:
        return match.group(0)
    return [match.group(int(g[1:]) if str(g).startswith("\\") else g) for g in groups]


def _flatten(value, levels=None) -> list:
    result = []
    for item in value:
        if isinstance(item, list) and (levels is None or levels > 0):
            result += _flatten(item, None if levels is None else levels - 1)
        elif item is not None:
            result.append(item)
    return result


def _mandatory(value, msg=None):
    if isinstance(value, jinja2.Undefined):
        raise jinja2.UndefinedError(msg or "mandatory variable is not defined")
    return value


# password_hash: Ansible's hash names, and its fixed default rounds (crypt(3)'s, not passlib's own, which
# change between versions): the same password and salt give the same hash under both tools.
HASH_NAMES = {"md5": "md5_crypt", "sha256": "sha256_crypt", "sha512": "sha512_crypt"}
HASH_DEFAULT_ROUNDS = {"md5_crypt": None, "sha256_crypt": 535000, "sha512_crypt": 656000}


def _password_hash(password, hashtype="sha512", salt=None, salt_size=None, rounds=None):
    algorithm = HASH_NAMES.get(hashtype, hashtype)
    if algorithm not in HASH_DEFAULT_ROUNDS:
        raise jinja2.exceptions.FilterArgumentError(
            f"password_hash: {hashtype} is not in the list of supported passlib algorithms: "
            f"{', '.join(HASH_NAMES)} (kfab has no bcrypt)")
    settings = {"salt": str(salt) if salt else None, "salt_size": salt_size,
                "rounds": rounds or HASH_DEFAULT_ROUNDS[algorithm]}
    return getattr(passlib.hash, algorithm).using(**{k: v for k, v in settings.items() if v}).hash(str(password))


FILTERS = {
    "bool": _to_bool,
    "to_json": lambda v, **kw: json.dumps(v, **kw),
    "to_nice_json": lambda v, indent=2: json.dumps(v, indent=indent, sort_keys=True),
    "to_yaml": lambda v: yaml.safe_dump(v, default_flow_style=True).rstrip("\n"),
    "to_nice_yaml": lambda v, indent=2: yaml.safe_dump(v, indent=indent, default_flow_style=False),
    "from_json": json.loads,
    "from_yaml": yaml.safe_load,
    "regex_replace": _regex_replace,
    "b64encode": lambda v: base64.b64encode(str(v).encode()).decode(),
    "b64decode": lambda v: base64.b64decode(str(v)).decode(),
    "mandatory": _mandatory,
    "ternary": lambda v, yes, no: yes if v else no,
    "basename": lambda v: Path(str(v)).name,
    "dirname": lambda v: str(Path(str(v)).parent),
    "dict2items": lambda d, key_name="key", value_name="value": [
        {key_name: k, value_name: v} for k, v in d.items()],
    "items2dict": lambda items, key_name="key", value_name="value": {
        i[key_name]: i[value_name] for i in items},
    "combine": lambda *dicts, recursive=False, list_merge="replace": _combine(dicts, recursive),
    "regex_search": _regex_search,
    "quote": lambda v: shlex.quote(str(v)),
    "flatten": lambda v, levels=None: _flatten(v, levels),
    "unique": lambda v: list(dict.fromkeys(v)),
    "difference": lambda a, b: [x for x in a if x not in b],
    "intersect": lambda a, b: [x for x in a if x in b],
    "union": lambda a, b: list(dict.fromkeys(list(a) + list(b))),
    "password_hash": _password_hash,
}


def _is_ip_address(value) -> bool:
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        return False


def _result_test(key: str, negate: bool = False):
    """`r is failed`, `r is changed`, `r is skipped`, `r is succeeded` on a registered result (Ansible's tests)."""
    def test(result) -> bool:
        if not isinstance(result, Mapping):
            raise jinja2.TemplateRuntimeError(f"the '{key}' test expects a registered result (a dictionary)")
        value = bool(result.get(key, False))
        return not value if negate else value
    return test


def _version(value, other, op="eq"):
    """`x is version('1.2', '>=')`: numeric parts compared in order (Ansible's loose versions)."""
    ops = {"eq": "__eq__", "==": "__eq__", "ne": "__ne__", "!=": "__ne__", "lt": "__lt__", "<": "__lt__",
           "le": "__le__", "<=": "__le__", "gt": "__gt__", ">": "__gt__", "ge": "__ge__", ">=": "__ge__"}

    def parts(v) -> tuple:
        return tuple(int(n) for n in re.findall(r"\d+", str(v)))
    return getattr(parts(value), ops[op])(parts(other))


TESTS = {
    "ip_address": _is_ip_address,
    "failed": _result_test("failed"), "failure": _result_test("failed"),
    "succeeded": _result_test("failed", negate=True), "success": _result_test("failed", negate=True),
    "successful": _result_test("failed", negate=True),
    "changed": _result_test("changed"), "change": _result_test("changed"),
    "skipped": _result_test("skipped"), "skip": _result_test("skipped"),
    "match": lambda v, pattern, ignorecase=False: re.match(pattern, str(v), re.I if ignorecase else 0) is not None,
    "search": lambda v, pattern, ignorecase=False: re.search(pattern, str(v), re.I if ignorecase else 0) is not None,
    "regex": lambda v, pattern, ignorecase=False: re.search(pattern, str(v), re.I if ignorecase else 0) is not None,
    "version": _version, "version_compare": _version,
    "subset": lambda a, b: set(a) <= set(b), "superset": lambda a, b: set(a) >= set(b),
    "contains": lambda seq, v: v in seq,
}


class _ValueEnvironment(NativeEnvironment):
    """One expression keeps its Python type ("{{ port }}" -> 8080); mixed text joins as a string.
    Unlike jinja2's NativeEnvironment, never literal_eval strings: "007" stays "007"."""

    @staticmethod
    def concat(values):
        head = list(islice(values, 2))
        if not head:
            return ""
        if len(head) == 1:
            return head[0]
        return "".join(str(v) for v in chain(head, values))


def _setup(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    return env


# keep_trailing_newline: `content: "{{ x }}\n"` must keep its newline.
VALUE_ENV = _setup(_ValueEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True))


def file_environment(search_path: list[Path]) -> jinja2.Environment:
    return _template_files(jinja2.FileSystemLoader([str(p) for p in search_path]))


def _template_files(loader: jinja2.BaseLoader) -> jinja2.Environment:
    # trim_blocks as Ansible's template module sets it, so {% if %} lines leave no blank lines.
    return _setup(jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     keep_trailing_newline=True, autoescape=False))


class _SearchLoader(jinja2.FileSystemLoader):
    """Templates by name along a search path, and the one a task renders by its full path (found by
    provision.searchpath, which may be outside every directory of the search path)."""

    def get_source(self, environment, template):
        if not os.path.isabs(template):
            return super().get_source(environment, template)
        path = Path(template)
        try:
            mtime = path.stat().st_mtime
            source = path.read_text()
        except OSError:
            raise jinja2.TemplateNotFound(template) from None
        return source, str(path), lambda: path.exists() and path.stat().st_mtime == mtime


@functools.lru_cache(maxsize=256)
def search_environment(search_path: tuple[Path, ...]) -> jinja2.Environment:
    """An environment for the templates of one search path (cached: a template is compiled once per run)."""
    return _template_files(_SearchLoader([str(p) for p in search_path]))


def is_template(value) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _render(template: jinja2.Template, variables: Mapping):
    # shared=True hands our lazy mapping to Jinja as is; Template.render() would copy (and so resolve)
    # every variable first.
    # The empty dict on top takes what Jinja writes (its traceback rewriting copies and updates it).
    context = template.new_context(ChainMap({}, variables, template.environment.globals), shared=True)
    try:
        result = template.environment.concat(template.root_render_func(context))
        if isinstance(result, jinja2.Undefined):
            str(result)  # StrictUndefined raises here with its message
    except jinja2.TemplateError:
        # Rewrites the traceback so its frames carry template file names and lines (as render() does).
        template.environment.handle_exception()
    return result


def render_value(value, variables: Mapping):
    """Resolve Jinja2 in a value (recursively through lists and dicts)."""
    if isinstance(value, str):
        if not is_template(value):
            return value
        try:
            template = VALUE_ENV.from_string(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ProvisionError(f"template syntax error in {value!r}: {exc.message}") from None
        return _render(template, variables)
    if isinstance(value, list):
        return [render_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: render_value(v, variables) for k, v in value.items()}
    return value


def evaluate(expression: str, variables: Mapping):
    """A bare Jinja2 expression, as in `when:` and `changed_when:`."""
    expression = str(expression).strip()
    if is_template(expression):
        return render_value(expression, variables)
    try:
        template = VALUE_ENV.from_string("{{ (" + expression + ") }}")
    except jinja2.TemplateSyntaxError as exc:
        raise ProvisionError(f"invalid expression {expression!r}: {exc.message}") from None
    return _render(template, variables)


def render_file(env: jinja2.Environment, name: str, variables: Mapping) -> str:
    template = env.get_template(name)
    return _render(template, variables)


def template_names(value) -> set[str]:
    """Top-level variable names a value needs, minus those it guards with `is defined` or `default`."""
    names: set[str] = set()
    if isinstance(value, list):
        for v in value:
            names |= template_names(v)
    elif isinstance(value, dict):
        for v in value.values():
            names |= template_names(v)
    elif is_template(value):
        names |= source_names(VALUE_ENV, value)
    return names


def expression_names(expression: str) -> set[str]:
    expression = str(expression)
    if is_template(expression):
        return template_names(expression)
    return source_names(VALUE_ENV, "{{ (" + expression + ") }}")


def source_names(env: jinja2.Environment, source: str) -> set[str]:
    ast = env.parse(source)
    names = set(jinja2.meta.find_undeclared_variables(ast))
    guarded = set()
    for node in ast.find_all((jinja2.nodes.Test, jinja2.nodes.Filter)):
        if node.name in ("defined", "undefined", "default", "d") and isinstance(node.node, jinja2.nodes.Name):
            guarded.add(node.node.name)
    return names - guarded


def check_syntax(env: jinja2.Environment, source: str, file: str) -> jinja2.nodes.Template:
    try:
        return env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ProvisionError(f"template syntax error: {exc.message}", file=file, line=exc.lineno) from None
