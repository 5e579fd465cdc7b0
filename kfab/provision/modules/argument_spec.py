"""validate_argument_spec: a role's meta/argument_specs.yml checked against the role's variables before
its first task (Ansible inserts the same task): required options, types (str, int, float, bool, list,
dict, path, raw), choices and list elements, with Ansible's wording."""

from __future__ import annotations

from kfab.provision.errors import ProvisionError
from kfab.provision.modules.base import Arg, Fail, Module, Result

BOOLS = {"yes": True, "on": True, "1": True, "true": True, "y": True, "t": True,
         "no": False, "off": False, "0": False, "false": False, "n": False, "f": False}


def check(name: str, value, spec: dict) -> str | None:
    """None when the value fits the option's spec, else Ansible's message for it."""
    kind = spec.get("type", "str")
    try:
        value = convert(value, kind)
    except (TypeError, ValueError) as exc:
        return (f"argument '{name}' is of type {type(value).__name__} and we were unable to convert to "
                f"{kind}: {exc}")
    if spec.get("choices") and value not in spec["choices"]:
        return f"value of {name} must be one of: {', '.join(map(str, spec['choices']))}, got: {value}"
    if kind == "list" and spec.get("elements"):
        for item in value:
            problem = check(f"{name}[]", item, {"type": spec["elements"], "choices": spec.get("choices")})
            if problem:
                return problem
    if kind == "dict" and spec.get("options"):
        problems = validate(spec["options"], lambda key: value[key] if key in value else _MISSING)
        return "; ".join(f"{name}.{p}" for p in problems) or None
    return None


def convert(value, kind: str):
    if kind in ("raw", "path") or value is None:
        return value
    if kind == "str":
        if isinstance(value, (dict, list)):
            raise TypeError("a mapping or list is not a string")
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise TypeError("a boolean is not an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value} is not a whole number")
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in BOOLS:
            return BOOLS[str(value).strip().lower()]
        raise ValueError(f"{value!r} is not a valid boolean")
    if kind == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, (str, int, float)):
            return [v.strip() for v in str(value).split(",")]
        raise TypeError(f"{type(value).__name__} is not a list")
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise TypeError(f"{type(value).__name__} is not a dictionary")
    raise ValueError(f"unknown type '{kind}' in the argument spec")


_MISSING = object()


def validate(options: dict, value_of) -> list[str]:
    problems, missing = [], []
    for name, spec in (options or {}).items():
        spec = spec or {}
        value = value_of(name)
        if value is _MISSING:
            if spec.get("required"):
                missing.append(name)
            continue
        problem = check(name, value, spec)
        if problem:
            problems.append(problem)
    if missing:
        problems.insert(0, f"missing required arguments: {', '.join(sorted(missing))}")
    return problems


def plan(args, host, files):
    def value_of(name: str):
        try:
            return files.evaluate(name)
        except ProvisionError:
            return _MISSING

    problems = validate(args["argument_spec"], value_of)
    if problems:
        yield Result({"argument_errors": problems, "validate_args_context": {"argument_spec_name": args["name"]}})
        yield Fail("Validation of arguments failed:\n" + "\n".join(f"- {p}" for p in problems))
        return
    yield Result({"msg": "The arg spec validation passed"})


MODULE = Module("validate_argument_spec", plan, {"argument_spec": Arg(required=True), "name": Arg(default="main")})
