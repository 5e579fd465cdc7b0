"""Label and field selectors, as Kubernetes parses and matches them.

Used by list/watch (`?labelSelector=`, `?fieldSelector=`) and by controllers (a Deployment's
`spec.selector` is a LabelSelector object: matchLabels + matchExpressions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kfab.objects.errors import bad_request

# Label keys: optional DNS-subdomain prefix + "/" + name; values may be empty (k8s.io/apimachinery validation).
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=" or self.op == "in":
            return present and value in self.values
        if self.op == "!=" or self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt"):
            try:
                have, want = int(value), int(self.values[0])
            except (TypeError, ValueError):
                return False
            return have > want if self.op == "gt" else have < want
        raise AssertionError(self.op)

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        if self.op in ("gt", "lt"):
            return f"{self.key}{'>' if self.op == 'gt' else '<'}{self.values[0]}"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """All requirements must match. `nothing` is the selector that matches no object (a nil LabelSelector)."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)

_REQ_RE = re.compile(
    r"""^\s*(?:
        (?P<not>!)\s*(?P<nkey>[^\s!=<>,()]+)\s*$                              # !key
      | (?P<skey>[^\s!=<>,()]+)\s+(?P<setop>in|notin)\s*\((?P<set>[^()]*)\)\s*$  # key in (a,b)
      | (?P<key>[^\s!=<>,()]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s!=<>,()]*)\s*$  # key=value
      | (?P<ekey>[^\s!=<>,()]+)\s*$                                           # key
    )""",
    re.VERBOSE,
)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside `( )` (set values contain commas)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _check_key(key: str, text: str) -> str:
    if len(key) > 316 or not _KEY_RE.match(key):
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in selector {text!r}")
    return key


def _check_value(value: str, text: str) -> str:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise bad_request(f"unable to parse requirement: invalid label value {value!r} in selector {text!r}")
    return value


def parse_label_selector(text: str | None) -> LabelSelector:
    """`a=b,c!=d,e in (f,g),h notin (i),j,!k` -> LabelSelector; an empty string matches everything.

    Raises APIError 400 with the offending part named.
    """
    if text is None or not text.strip():
        return EVERYTHING
    reqs = []
    for part in _split_top_level(text):
        m = _REQ_RE.match(part)
        if not m or not part.strip():
            raise bad_request(f"unable to parse requirement: {part.strip()!r} in label selector {text!r}")
        if m["not"]:
            reqs.append(Requirement(_check_key(m["nkey"], text), "!"))
        elif m["skey"]:
            if not m["set"].strip():
                raise bad_request(f"unable to parse requirement: {part.strip()!r}: for 'in', 'notin' operators, "
                                  "values set can't be empty")
            values = tuple(sorted({_check_value(v.strip(), text) for v in m["set"].split(",")}))
            reqs.append(Requirement(_check_key(m["skey"], text), m["setop"], values))
        elif m["key"]:
            op = {"==": "=", "=": "=", "!=": "!=", ">": "gt", "<": "lt"}[m["op"]]
            value = m["value"]
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", value):
                raise bad_request(f"unable to parse requirement: {part.strip()!r}: for 'gt', 'lt' operators, "
                                  "the value must be an integer")
            reqs.append(Requirement(_check_key(m["key"], text), op, (_check_value(value, text),)))
        else:
            reqs.append(Requirement(_check_key(m["ekey"], text), "exists"))
    return LabelSelector(tuple(reqs))


def selector_from_object(selector: dict | None) -> LabelSelector:
    """A metav1.LabelSelector object (matchLabels, matchExpressions) -> LabelSelector.

    None matches nothing and {} matches everything, as LabelSelectorAsSelector does.
    Raises ValueError naming the bad expression (callers turn it into a 422 with a field path).
    """
    if selector is None:
        return NOTHING
    reqs = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        reqs.append(Requirement(key, "=", (str(value),)))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not key:
            raise ValueError(f"matchExpressions[{i}].key: Required value")
        if op in ("In", "NotIn"):
            if not values:
                raise ValueError(f"matchExpressions[{i}].values: must be specified when `operator` is 'In' or 'NotIn'")
            reqs.append(Requirement(key, op.lower(), tuple(sorted(str(v) for v in values))))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise ValueError(f"matchExpressions[{i}].values: may not be specified when `operator` is "
                                 "'Exists' or 'DoesNotExist'")
            reqs.append(Requirement(key, "exists" if op == "Exists" else "!"))
        else:
            raise ValueError(f"matchExpressions[{i}].operator: Unsupported value: {op!r}: supported values: "
                             '"In", "NotIn", "Exists", "DoesNotExist"')
    return LabelSelector(tuple(reqs))


# --- field selectors --------------------------------------------------------------------------

# Fields each kind can be selected by, beyond metadata.name / metadata.namespace (as kube-apiserver's
# per-kind GetAttrs/field label conversion functions list them).
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"),
    "Secret": ("type",),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "PersistentVolumeClaim": ("status.phase",),
    "PersistentVolume": ("status.phase",),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str

    def matches(self, obj: dict) -> bool:
        have = field_value(obj, self.field)
        return (have == self.value) if self.op == "=" else (have != self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def exact_name(self) -> str | None:
        """The name when the selector pins `metadata.name=` (kubectl's way of watching one object)."""
        for r in self.requirements:
            if r.field == "metadata.name" and r.op == "=":
                return r.value
        return None


def field_value(obj: dict, path: str) -> str:
    if path == "source":  # Event's `source` field selects on source.component
        path = "source.component"
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str | None, kind: str) -> FieldSelector:
    """`metadata.name=x,status.phase!=Running` -> FieldSelector; unsupported fields are a 400, as in Kubernetes."""
    if text is None or not text.strip():
        return FieldSelector()
    allowed = ("metadata.name", "metadata.namespace") + _EXTRA_FIELDS.get(kind, ())
    reqs = []
    for part in _split_unescaped(text, ","):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: {text!r}; can't understand {part!r}")
        field, op, value = m.group(1), "!=" if m.group(2) == "!=" else "=", _unescape(m.group(3).strip())
        if field not in allowed:
            raise bad_request(f'field label not supported: {field}')
        reqs.append(FieldRequirement(field, op, value))
    return FieldSelector(tuple(reqs))
