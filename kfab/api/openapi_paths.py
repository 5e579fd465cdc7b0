"""The `paths` of kfab's OpenAPI documents: one operation per verb each resource supports, shaped like
kube-apiserver's, for OpenAPI v3 (per group-version) and Swagger 2.0.

kubectl reads operations, not just schemas: `kubectl explain` finds a resource's kind from the
`x-kubernetes-group-version-kind` of its list/get operation, and `kubectl apply/create` decides whether the
server validates fields itself by looking for the `fieldValidation` query parameter on the PATCH operation
of the kind (otherwise it falls back to client-side validation with the Swagger 2.0 protobuf document).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kfab.objects import schema_defs
from kfab.objects.registry import ResourceType, delete_returns_object

META = "io.k8s.apimachinery.pkg.apis.meta.v1."

# name -> (description, type); written for kfab, in the spirit of kube-apiserver's parameter docs.
QUERY_PARAMETERS = {
    "allowWatchBookmarks": ("Ask for BOOKMARK watch events; ignored unless watching.", "boolean"),
    "continue": ("The continue token of a previous list call, to fetch the next chunk.", "string"),
    "dryRun": ("When present (`All`), the request is processed fully but nothing is persisted.", "string"),
    "fieldManager": ("Name of the actor making the change, recorded in managedFields.", "string"),
    "fieldSelector": ("Restrict the list to objects whose fields match; defaults to everything.", "string"),
    "fieldValidation": ("How to treat fields the schema does not know and duplicate fields: Ignore, Warn, or "
                        "Strict (fail the request). Defaults to Strict for kubectl.", "string"),
    "force": ("Force an apply request: take ownership of fields other managers own. Only for apply patches.",
              "boolean"),
    "gracePeriodSeconds": ("Seconds before the object is deleted; zero deletes immediately.", "integer"),
    "labelSelector": ("Restrict the list to objects whose labels match; defaults to everything.", "string"),
    "limit": ("Maximum number of objects to return; the list metadata carries `continue` when more exist.",
              "integer"),
    "orphanDependents": ("Deprecated: use propagationPolicy.", "boolean"),
    "propagationPolicy": ("Garbage collection of dependents: Orphan, Background or Foreground.", "string"),
    "resourceVersion": ("Serve the request from this resource version or newer (watch: start after it).",
                        "string"),
    "resourceVersionMatch": ("How resourceVersion applies to a list: NotOlderThan or Exact.", "string"),
    "sendInitialEvents": ("Start a watch with synthetic ADDED events for the current state.", "boolean"),
    "timeoutSeconds": ("Timeout for the list/watch call.", "integer"),
    "watch": ("Watch for changes and stream them as ADDED, MODIFIED and DELETED events.", "boolean"),
    "pretty": ("If 'true', then the output is pretty printed.", "string"),
    "container": ("The container whose logs to stream; optional when the pod has one container.", "string"),
    "follow": ("Follow the log stream of the pod.", "boolean"),
    "previous": ("Return the logs of the previous, terminated container.", "boolean"),
    "tailLines": ("Number of lines from the end of the logs to show.", "integer"),
    "timestamps": ("Prefix every line of log output with an RFC3339 timestamp.", "boolean"),
    "sinceSeconds": ("Only logs newer than this many seconds.", "integer"),
}
LIST = ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
        "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"]
WRITE = ["dryRun", "fieldManager", "fieldValidation"]
DELETE = ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"]
PATCH_TYPES = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json"]
# A custom resource has no strategic merge keys: kube-apiserver's document leaves that patch type out, and
# kubectl apply reads it to choose a JSON merge patch.
CUSTOM_PATCH_TYPES = [t for t in PATCH_TYPES if t != "application/strategic-merge-patch+json"]
RESPONSE_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]


@dataclass
class Operation:
    action: str  # x-kubernetes-action: list, post, get, put, patch, delete, deletecollection, connect
    operation_id: str
    description: str
    gvk: dict
    query: list[str]
    response: str | None  # definition name of the 200 body; None for text (logs)
    body: str | None = None  # definition name of the request body
    body_types: list[str] = field(default_factory=lambda: ["*/*"])
    codes: tuple[str, ...] = ("200",)
    tag: str = ""  # operations are grouped per group-version: core_v1, apps_v1


@dataclass
class PathItem:
    path: str
    path_params: list[str]  # "namespace", "name"
    operations: dict[str, Operation]  # HTTP method (lowercase) -> operation


def _gv_camel(rt: ResourceType) -> str:
    group = rt.group.removesuffix(".k8s.io") if rt.group else "core"
    words = group.split(".")
    return words[0].capitalize() + "".join(w.capitalize() for w in words[1:]) + rt.version.capitalize()


def gv_tag(group: str, version: str) -> str:
    group = group.removesuffix(".k8s.io") if group else "core"
    words = group.split(".")
    return words[0] + "".join(w.capitalize() for w in words[1:]) + f"_{version}"


def gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "kind": kind, "version": version}


# Subresource -> (group, version, kind, definition) of its body; None = the parent's kind.
_SUBRESOURCE_KINDS = {
    "scale": ("autoscaling", "v1", "Scale", "io.k8s.api.autoscaling.v1.Scale"),
    "binding": ("", "v1", "Binding", "io.k8s.api.core.v1.Binding"),
    "eviction": ("policy", "v1", "Eviction", "io.k8s.api.policy.v1.Eviction"),
}


def _patch_types(rt: ResourceType) -> list[str]:
    return CUSTOM_PATCH_TYPES if rt.custom is not None else PATCH_TYPES


def resource_paths(rt: ResourceType) -> list[PathItem]:
    """Every path of one resource: collection, object, all-namespaces list, and subresources."""
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scoped = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    ns = ["namespace"] if rt.namespaced else []
    gv, kind = _gv_camel(rt), rt.kind
    scope = "Namespaced" if rt.namespaced else ""
    definition, list_definition = schema_defs.definition_name(rt), schema_defs.definition_name(rt) + "List"
    own = gvk(rt.group, rt.version, kind)
    verbs = set(rt.verbs)
    items: list[PathItem] = []

    collection: dict[str, Operation] = {}
    if "list" in verbs:
        collection["get"] = Operation("list", f"list{gv}{scope}{kind}", f"list or watch objects of kind {kind}",
                                      own, LIST, list_definition)
    if "create" in verbs:
        collection["post"] = Operation("post", f"create{gv}{scope}{kind}", f"create a {kind}", own, WRITE,
                                       definition, definition, codes=("200", "201", "202"))
    if "deletecollection" in verbs:
        collection["delete"] = Operation("deletecollection", f"delete{gv}Collection{scope}{kind}",
                                         f"delete collection of {kind}", own, DELETE + LIST, META + "Status",
                                         META + "DeleteOptions")
    if collection:
        items.append(PathItem(scoped, ns, collection))

    named: dict[str, Operation] = {}
    if "get" in verbs:
        named["get"] = Operation("get", f"read{gv}{scope}{kind}", f"read the specified {kind}", own, [], definition)
    if "update" in verbs:
        named["put"] = Operation("put", f"replace{gv}{scope}{kind}", f"replace the specified {kind}", own, WRITE,
                                 definition, definition, codes=("200", "201"))
    if "patch" in verbs:
        named["patch"] = Operation("patch", f"patch{gv}{scope}{kind}", f"partially update the specified {kind}",
                                   own, WRITE + ["force"], definition, META + "Patch", _patch_types(rt), ("200", "201"))
    if "delete" in verbs:
        # Namespace's own REST hides that it returns the object, so Kubernetes' document says Status there.
        answer = definition if delete_returns_object(rt) and kind != "Namespace" else META + "Status"
        named["delete"] = Operation("delete", f"delete{gv}{scope}{kind}", f"delete a {kind}", own, DELETE,
                                    answer, META + "DeleteOptions", codes=("200", "202"))
    if named:
        items.append(PathItem(f"{scoped}/{{name}}", ns + ["name"], named))

    if rt.namespaced and "list" in verbs:
        items.append(PathItem(f"{prefix}/{rt.plural}", [], {"get": Operation(
            "list", f"list{gv}{kind}ForAllNamespaces", f"list or watch objects of kind {kind}", own, LIST,
            list_definition)}))

    for sub in rt.subresources:
        items.extend(_subresource_paths(rt, sub, f"{scoped}/{{name}}/{sub}", ns + ["name"], gv, scope))
    for item in items:
        for op in item.operations.values():
            op.tag = gv_tag(rt.group, rt.version)
    return items


def _subresource_paths(rt: ResourceType, sub: str, path: str, params: list[str], gv: str,
                       scope: str) -> list[PathItem]:
    kind, title = rt.kind, sub.capitalize()
    group, version, sub_kind, definition = _SUBRESOURCE_KINDS.get(
        sub, (rt.group, rt.version, rt.kind, schema_defs.definition_name(rt)))
    sub_gvk = gvk(group, version, sub_kind)
    if sub in ("status", "scale"):
        what = f"{sub} of the specified {kind}"
        return [PathItem(path, params, {
            "get": Operation("get", f"read{gv}{scope}{kind}{title}", f"read {what}", sub_gvk, [], definition),
            "put": Operation("put", f"replace{gv}{scope}{kind}{title}", f"replace {what}", sub_gvk, WRITE,
                             definition, definition, codes=("200", "201")),
            "patch": Operation("patch", f"patch{gv}{scope}{kind}{title}", f"partially update {what}", sub_gvk,
                               WRITE + ["force"], definition, META + "Patch", _patch_types(rt), ("200", "201")),
        })]
    if sub == "binding":
        return [PathItem(path, params, {"post": Operation(
            "post", f"create{gv}{scope}{kind}Binding", f"create binding of a {kind}", sub_gvk, WRITE, definition,
            definition, codes=("200", "201", "202"))})]
    if sub == "eviction":
        return [PathItem(path, params, {"post": Operation(
            "post", f"create{gv}{scope}{kind}Eviction", f"create eviction of a {kind}", sub_gvk, WRITE, definition,
            definition, codes=("200", "201", "202"))})]
    if sub == "log":
        return [PathItem(path, params, {"get": Operation(
            "get", f"read{gv}{scope}{kind}Log", f"read log of the specified {kind}", sub_gvk,
            ["container", "follow", "previous", "sinceSeconds", "tailLines", "timestamps"], None)})]
    if sub == "finalize":
        return [PathItem(path, params, {"put": Operation(
            "put", f"replace{gv}{scope}{kind}Finalize", f"replace finalize of the specified {kind}", sub_gvk,
            WRITE, definition, definition, codes=("200", "201"))})]
    return []


def _path_parameter(name: str) -> dict:
    return {"description": "name of the object" if name == "name"
            else "object name and auth scope, such as for teams and projects",
            "in": "path", "name": name, "required": True}


def _query_parameter(name: str) -> dict:
    description, type_ = QUERY_PARAMETERS[name]
    return {"description": description, "in": "query", "name": name, "type": type_}


def render_v3(item: PathItem) -> dict:
    def ref(name: str) -> dict:
        return {"$ref": f"#/components/schemas/{name}"}

    def parameter(p: dict) -> dict:
        out = {k: v for k, v in p.items() if k != "type"}
        out["schema"] = {"type": p.get("type", "string"), "uniqueItems": True}
        return out

    rendered: dict = {}
    for method, op in item.operations.items():
        body = {"description": op.description, "operationId": op.operation_id,
                "parameters": [parameter(_query_parameter(q)) for q in op.query], "tags": [op.tag],
                "x-kubernetes-action": op.action, "x-kubernetes-group-version-kind": op.gvk}
        if op.body:
            body["requestBody"] = {"content": {t: {"schema": ref(op.body)} for t in op.body_types},
                                   "required": method != "delete"}
        responses = {}
        for code in op.codes:
            if op.response is None:
                content = {"text/plain": {"schema": {"type": "string"}}}
            else:
                content = {t: {"schema": ref(op.response)} for t in RESPONSE_TYPES}
                if op.action == "list":
                    content["application/json;stream=watch"] = {"schema": ref(op.response)}
            responses[code] = {"content": content, "description": _code_text(code)}
        responses["401"] = {"description": "Unauthorized"}
        body["responses"] = responses
        rendered[method] = body
    rendered["parameters"] = ([parameter(_path_parameter(p)) for p in item.path_params]
                              + [parameter(_query_parameter("pretty"))])
    return rendered


def render_v2(item: PathItem) -> dict:
    rendered: dict = {}
    for method, op in item.operations.items():
        params = [dict(_query_parameter(q), uniqueItems=True) for q in op.query]
        if op.body:
            params.insert(0, {"in": "body", "name": "body", "required": method != "delete",
                              "schema": {"$ref": f"#/definitions/{op.body}"}})
        responses = {}
        for code in op.codes:
            responses[code] = {"description": _code_text(code)}
            responses[code]["schema"] = ({"type": "string"} if op.response is None
                                         else {"$ref": f"#/definitions/{op.response}"})
        responses["401"] = {"description": "Unauthorized"}
        rendered[method] = {
            "consumes": op.body_types if op.body else ["*/*"],
            "description": op.description, "operationId": op.operation_id, "parameters": params,
            "produces": ["text/plain"] if op.response is None else RESPONSE_TYPES,
            "responses": responses, "schemes": ["https"], "tags": [op.tag],
            "x-kubernetes-action": op.action, "x-kubernetes-group-version-kind": op.gvk,
        }
    rendered["parameters"] = ([dict(_path_parameter(p), type="string", uniqueItems=True) for p in item.path_params]
                              + [dict(_query_parameter("pretty"), uniqueItems=True)])
    return rendered


def _code_text(code: str) -> str:
    return {"200": "OK", "201": "Created", "202": "Accepted"}.get(code, "OK")
