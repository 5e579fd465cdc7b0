"""ObjectMeta, labels, annotations and LabelSelector rules (apimachinery's ValidateObjectMeta and friends)."""

from __future__ import annotations

from typing import Callable

from kfab.objects.errors import Cause
from kfab.objects import names
from kfab.objects.validation.field import child, forbidden, immutable, invalid, required, too_long

NameFn = Callable[[str, bool], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# Finalizer names that need no domain prefix (core's standardFinalizers).
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}
_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def validate_labels(labels: object, path: str) -> list[Cause]:
    causes = []
    for key, value in as_dict(labels).items():
        causes += [invalid(path, key, m) for m in names.is_qualified_name(key)]
        if isinstance(value, str):
            causes += [invalid(path, value, m) for m in names.is_valid_label_value(value)]
    return causes


def validate_annotations(annotations: object, path: str) -> list[Cause]:
    annotations = as_dict(annotations)
    causes = []
    for key in annotations:
        # The rule is QualifiedName except that case does not matter (ValidateAnnotations).
        causes += [invalid(path, key, m) for m in names.is_qualified_name(key.lower())]
    size = sum(len(k.encode()) + len(as_str(v).encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def validate_finalizers(finalizers: object, path: str) -> list[Cause]:
    causes = []
    for name in as_list(finalizers):
        name = as_str(name)
        msgs = names.is_qualified_name(name)
        causes += [invalid(path, name, m) for m in msgs]
        if not msgs and "/" not in name and name not in _STANDARD_FINALIZERS:
            causes.append(invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))
    return causes


def validate_owner_references(refs: object, path: str) -> list[Cause]:
    causes, controllers = [], []
    for ref in as_list(refs):
        ref = as_dict(ref)
        api_version = as_str(ref.get("apiVersion"))
        if not api_version.rpartition("/")[2]:
            causes.append(invalid(child(path, "apiVersion"), api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not as_str(ref.get(key)):
                causes.append(invalid(child(path, key), as_str(ref.get(key)), f"{key} must not be empty"))
        if ref.get("controller") is True:
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        causes.append(invalid(path, as_list(refs), "Only one reference can have Controller set to true. Found "
                              f'"true" in references for {controllers[0]} and {controllers[1]}'))
    return causes


def validate_object_meta(meta: object, namespaced: bool, name_fn: NameFn, path: str = "metadata") -> list[Cause]:
    meta = as_dict(meta)
    causes: list[Cause] = []
    generate_name = as_str(meta.get("generateName"))
    if generate_name:
        causes += [invalid(child(path, "generateName"), generate_name, m) for m in name_fn(generate_name, True)]
    name = as_str(meta.get("name"))
    if not name:
        causes.append(required(child(path, "name"), "name or generateName is required"))
    else:
        causes += [invalid(child(path, "name"), name, m) for m in name_fn(name, False)]
    namespace = as_str(meta.get("namespace"))
    if namespaced:
        if not namespace:
            causes.append(required(child(path, "namespace")))
        else:
            causes += [invalid(child(path, "namespace"), namespace, m) for m in names.name_is_dns_label(namespace)]
    elif namespace:
        causes.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        causes.append(invalid(child(path, "generation"), generation, "must be greater than or equal to 0"))
    causes += validate_labels(meta.get("labels"), child(path, "labels"))
    causes += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    causes += validate_owner_references(meta.get("ownerReferences"), child(path, "ownerReferences"))
    causes += validate_finalizers(meta.get("finalizers"), child(path, "finalizers"))
    return causes


def validate_object_meta_update(new: object, old: object, path: str = "metadata") -> list[Cause]:
    """Identity fields never change after create (ValidateObjectMetaUpdate); labels etc. are re-checked."""
    new, old = as_dict(new), as_dict(old)
    causes = []
    for key in ("name", "namespace", "uid", "creationTimestamp"):
        if key in old and new.get(key) != old.get(key):
            causes.append(immutable(child(path, key), new.get(key)))
    causes += validate_labels(new.get("labels"), child(path, "labels"))
    causes += validate_annotations(new.get("annotations"), child(path, "annotations"))
    causes += validate_owner_references(new.get("ownerReferences"), child(path, "ownerReferences"))
    causes += validate_finalizers(new.get("finalizers"), child(path, "finalizers"))
    return causes


def validate_label_selector(selector: object, path: str) -> list[Cause]:
    """metav1.LabelSelector: matchLabels as labels, matchExpressions with a known operator and fitting values."""
    selector = as_dict(selector)
    causes = []
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        expr = as_dict(expr)
        here = child(path, "matchExpressions", i)
        operator, values = as_str(expr.get("operator")), as_list(expr.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(required(child(here, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(forbidden(child(here, "values"),
                                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(invalid(child(here, "operator"), operator, "not a valid selector operator"))
        key = as_str(expr.get("key"))
        causes += [invalid(child(here, "key"), key, m) for m in names.is_qualified_name(key)]
        for value in values:
            causes += [invalid(child(here, "values"), value, m) for m in names.is_valid_label_value(as_str(value))]
    causes += validate_labels(selector.get("matchLabels"), child(path, "matchLabels"))
    return causes


def selector_is_empty(selector: object) -> bool:
    selector = as_dict(selector)
    return not as_dict(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))


def selector_matches(selector: object, labels: object) -> bool:
    """Does a LabelSelector object select these labels (an empty selector selects everything)?"""
    selector, labels = as_dict(selector), as_dict(labels)
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_dict(expr)
        key, operator, values = expr.get("key"), expr.get("operator"), as_list(expr.get("values"))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
