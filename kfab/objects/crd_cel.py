"""CEL `x-kubernetes-validations` rules of CRD schemas, evaluated with cel-python (celpy).

A rule sees the value at its schema node as `self`; a failed rule is a field error worded as
apiextensions-apiserver's CEL validator words it: `spec: Invalid value: "object": <message>` (the value
shown is the type name, the message the rule's `message`, else `failed rule: <rule>`). Transition rules
(those that use `oldSelf`) are checked on updates only, where the field had a value before, with `oldSelf`
bound to that value - as upstream, so `self == oldSelf` makes a field immutable once set.
"""

from __future__ import annotations

import functools

from kfab.objects.errors import Cause


@functools.cache
def _cel():
    """celpy and its environment, imported at the first CEL rule: cel-python with lark and pendulum is ~7 MB of
    every API server's memory, and most clusters have no CRD with rules."""
    import celpy
    return celpy, celpy.Environment()


@functools.lru_cache(maxsize=1024)
def _program(rule: str):
    _, env = _cel()
    return env.program(env.compile(rule))


def compile_error(rule: str) -> str | None:
    """None when the rule compiles, else the compiler's message (a CRD with such a rule is refused)."""
    celpy, _ = _cel()
    try:
        _program(rule)
    except celpy.CELParseError as e:
        return str(e).splitlines()[0]
    return None


NO_OLD = object()  # the field had no value before (a create, or a new field)

_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def check(schema: dict, value, path: str, old=NO_OLD) -> list[Cause]:
    causes: list[Cause] = []
    for rule in schema.get("x-kubernetes-validations") or ():
        celpy, _ = _cel()
        text = rule.get("rule", "")
        bindings = {"self": celpy.json_to_cel(value)}
        if "oldSelf" in text:
            if old is NO_OLD:
                continue  # a transition rule: nothing to compare with
            bindings["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = _program(text).evaluate(bindings)
        except (celpy.CELParseError, celpy.CELEvalError) as e:
            result = e
        if not isinstance(result, Exception) and bool(result):
            continue
        field = path
        if rule.get("fieldPath"):
            field = f"{path}{rule['fieldPath']}" if path else rule["fieldPath"].lstrip(".")
        if isinstance(result, Exception):
            detail = f"{text}: {result.args[0] if result.args else result}"
        else:
            detail = rule.get("message") or f"failed rule: {text}"
        kind = _TYPE_NAMES.get(type(value), "object")
        causes.append(Cause(field, f'Invalid value: "{kind}": {detail}', rule.get("reason") or "FieldValueInvalid"))
    return causes
