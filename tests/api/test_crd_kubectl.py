"""CustomResourceDefinitions, driven by real kubectl and the official client as an operator's user would:
apply a CRD, wait for Established, then use the new kind like a built-in one."""

from __future__ import annotations

import json
import secrets
import ssl
import time
import urllib.request

import pytest

from tests.api.conftest import wait_until
from tests.api.crd_manifests import crd_manifest, object_with_spec

CRONTAB_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - {{name: Spec, type: string, jsonPath: .spec.cronSpec}}
    - {{name: Replicas, type: integer, jsonPath: .spec.replicas}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: The wanted state of a cron tab.
            required: [cronSpec]
            x-kubernetes-validations:
            - rule: "!has(self.maxReplicas) || self.replicas <= self.maxReplicas"
              message: replicas must not exceed maxReplicas
            properties:
              cronSpec:
                type: string
                description: When to run, in cron format.
                pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){{4}}$'
              image: {{type: string, maxLength: 20}}
              replicas: {{type: integer, minimum: 1, maximum: 10, default: 1}}
              maxReplicas: {{type: integer}}
              size: {{type: string, enum: [small, large]}}
              port: {{x-kubernetes-int-or-string: true}}
              email: {{type: string, format: email}}
              tags: {{type: array, maxItems: 2, items: {{type: string}}}}
              extra: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
              region:
                type: string
                x-kubernetes-validations:
                - {{rule: "self == oldSelf", message: region is immutable}}
          status:
            type: object
            properties:
              replicas: {{type: integer}}
              message: {{type: string}}
"""

CRONTAB = """
apiVersion: {group}/v1
kind: CronTab
metadata:
  name: {name}
spec:
  cronSpec: "* * * * */5"
  image: cron-image
"""


@pytest.fixture
def crontabs(kubectl):
    """A fresh group with the CronTab CRD, established; removed afterwards."""
    group = f"g{secrets.token_hex(3)}.example.com"
    kubectl("apply", "-f", "-", input=CRONTAB_CRD.format(group=group))
    kubectl("wait", "--for=condition=Established", f"crd/crontabs.{group}", "--timeout=20s")
    yield group
    kubectl("delete", "crd", f"crontabs.{group}", "--ignore-not-found", "--timeout=30s", check=False)


def _json(result) -> dict:
    return json.loads(result.stdout)


def test_crd_is_established_with_upstream_conditions_and_served_in_discovery(kubectl, crontabs):
    crd = _json(kubectl("get", "crd", f"crontabs.{crontabs}", "-o", "json"))
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert (conditions["NamesAccepted"]["status"], conditions["NamesAccepted"]["reason"]) == ("True", "NoConflicts")
    assert (conditions["Established"]["status"], conditions["Established"]["reason"]) == \
        ("True", "InitialNamesAccepted")
    assert crd["status"]["acceptedNames"]["listKind"] == "CronTabList"
    assert crd["status"]["storedVersions"] == ["v1"]

    group = _json(kubectl("get", "--raw", f"/apis/{crontabs}"))
    assert group["preferredVersion"]["version"] == "v1"  # GA sorts before beta
    resources = _json(kubectl("get", "--raw", f"/apis/{crontabs}/v1"))["resources"]
    names = {r["name"]: r for r in resources}
    assert names["crontabs"]["shortNames"] == ["ct"] and names["crontabs"]["categories"] == ["all"]
    assert names["crontabs/scale"]["kind"] == "Scale" and "crontabs/status" in names
    listed = kubectl("api-resources", f"--api-group={crontabs}").stdout
    assert "crontabs" in listed and "CronTab" in listed


def test_aggregated_discovery_and_openapi_carry_the_new_kind(kfab_server, crontabs):
    ctx = ssl.create_default_context(cafile=str(kfab_server.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(*_admin_cert(kfab_server))

    def get(path: str, accept: str = "application/json") -> dict:
        req = urllib.request.Request(kfab_server.url + path, headers={"Accept": accept})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.loads(resp.read())

    aggregated = get("/apis", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    entry = next(g for g in aggregated["items"] if g["metadata"]["name"] == crontabs)
    assert [v["version"] for v in entry["versions"]] == ["v1", "v1beta1"]
    assert entry["versions"][0]["resources"][0]["resource"] == "crontabs"
    definition = ".".join(reversed(crontabs.split("."))) + ".v1.CronTab"
    assert definition in get("/openapi/v2")["definitions"]
    v3 = get(f"/openapi/v3/apis/{crontabs}/v1")
    spec = v3["components"]["schemas"][definition]["properties"]["spec"]
    assert spec["properties"]["replicas"]["maximum"] == 10


def _admin_cert(server) -> tuple[str, str]:
    import base64
    import yaml

    config = yaml.safe_load(server.kubeconfig.read_text())
    user = config["users"][0]["user"]
    out = []
    for key in ("client-certificate-data", "client-key-data"):
        path = server.data_dir / f"crd-test-{key}.pem"
        path.write_bytes(base64.b64decode(user[key]))
        out.append(str(path))
    return out[0], out[1]


def test_get_prints_printer_columns_and_categories_include_the_kind(kubectl, namespace, crontabs):
    kubectl("apply", "-n", namespace, "-f", "-", input=CRONTAB.format(group=crontabs, name="nightly"))
    out = kubectl("get", f"crontabs.{crontabs}", "-n", namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "SPEC", "REPLICAS"]
    assert out[1].split()[:2] == ["nightly", "*"] and out[1].split()[-1] == "1"  # replicas defaulted
    everything = kubectl("get", "all", "-n", namespace).stdout
    assert f"crontab.{crontabs}/nightly" in everything


def test_schema_errors_read_as_kube_apiserver_words_them(kubectl, namespace, crontabs):
    bad = CRONTAB.format(group=crontabs, name="bad").replace(
        'cronSpec: "* * * * */5"', 'cronSpec: "nope"\n  replicas: "3"\n  size: huge\n  tags: [a, b, c]\n'
        '  email: nobody\n  port: [1]').replace("cron-image", "an-image-name-that-is-far-too-long")
    result = kubectl("apply", "-n", namespace, "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    err = result.stderr
    assert 'The CronTab "bad" is invalid' in err
    assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"' in err
    assert 'spec.size: Unsupported value: "huge": supported values: "small", "large"' in err
    assert "spec.image: Too long: may not be more than 20 bytes" in err
    assert "spec.tags: Too many: 3: must have at most 2 items" in err
    assert "spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match" in err
    assert 'spec.email: Invalid value: "nobody": spec.email in body must be of type email: "nobody"' in err
    assert 'spec.port: Invalid value: "array": spec.port in body must be of type integer,string: "array"' in err

    out_of_range = CRONTAB.format(group=crontabs, name="big").replace("image: cron-image", "replicas: 0")
    err = kubectl("apply", "-n", namespace, "-f", "-", input=out_of_range, check=False).stderr
    assert "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1" in err

    cel = CRONTAB.format(group=crontabs, name="cel").replace("image: cron-image", "replicas: 5\n  maxReplicas: 2")
    err = kubectl("apply", "-n", namespace, "-f", "-", input=cel, check=False).stderr
    assert 'spec: Invalid value: "object": replicas must not exceed maxReplicas' in err

    missing = CRONTAB.format(group=crontabs, name="missing").replace('cronSpec: "* * * * */5"', "")
    err = kubectl("apply", "-n", namespace, "-f", "-", input=missing, check=False).stderr
    assert "spec.cronSpec: Required value" in err


def test_a_transition_rule_keeps_a_field_immutable(kubectl, namespace, crontabs):
    manifest = CRONTAB.format(group=crontabs, name="placed").replace("image: cron-image", "region: eu")
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    err = kubectl("apply", "-n", namespace, "-f", "-", input=manifest.replace("eu", "us"), check=False).stderr
    assert 'spec.region: Invalid value: "string": region is immutable' in err
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest.replace("cronSpec: \"* * * * */5\"",
                                                                        "cronSpec: \"* * * * */6\""))


def test_unknown_fields_are_refused_under_strict_and_pruned_otherwise(kubectl, namespace, crontabs):
    extra = CRONTAB.format(group=crontabs, name="extra").replace(
        "image: cron-image", "image: cron-image\n  colour: blue\n  extra: {kept: here}")
    err = kubectl("apply", "-n", namespace, "-f", "-", input=extra, check=False).stderr
    assert 'strict decoding error: unknown field "spec.colour"' in err
    kubectl("apply", "-n", namespace, "--validate=false", "-f", "-", input=extra)
    spec = _json(kubectl("get", f"crontabs.{crontabs}", "extra", "-n", namespace, "-o", "json"))["spec"]
    assert "colour" not in spec and spec["extra"] == {"kept": "here"} and spec["replicas"] == 1


def test_status_and_scale_subresources_split_spec_from_status(kubectl, k8s, namespace, crontabs):
    from kubernetes import client

    api = client.CustomObjectsApi(k8s)
    body = {"apiVersion": f"{crontabs}/v1", "kind": "CronTab", "metadata": {"name": "split"},
            "spec": {"cronSpec": "* * * * *"}, "status": {"replicas": 7}}
    made = api.create_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", body)
    assert "status" not in made and made["metadata"]["generation"] == 1  # status only through /status
    api.patch_namespaced_custom_object_status(crontabs, "v1", namespace, "crontabs", "split",
                                              {"status": {"replicas": 2, "message": "ok"}})
    changed = api.patch_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", "split",
                                                 {"spec": {"image": "other"}, "status": {"message": "ignored"}})
    assert changed["status"] == {"replicas": 2, "message": "ok"} and changed["metadata"]["generation"] == 2

    kubectl("scale", f"crontabs.{crontabs}", "split", "-n", namespace, "--replicas=4")
    scale = api.get_namespaced_custom_object_scale(crontabs, "v1", namespace, "crontabs", "split")
    assert scale["spec"]["replicas"] == 4 and scale["status"]["replicas"] == 2
    assert api.get_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", "split")["spec"]["replicas"] == 4


def test_explain_reads_the_crd_schema(kubectl, crontabs):
    out = kubectl("explain", "crontabs.spec", f"--api-version={crontabs}/v1").stdout
    assert "KIND:       CronTab" in out
    assert "The wanted state of a cron tab." in out
    assert "cronSpec\t<string> -required-" in out
    assert "When to run, in cron format." in out


def test_versions_without_conversion_read_the_same_object(kubectl, namespace, crontabs):
    kubectl("apply", "-n", namespace, "-f", "-", input=CRONTAB.format(group=crontabs, name="both"))
    beta = _json(kubectl("get", f"crontabs.v1beta1.{crontabs}", "both", "-n", namespace, "-o", "json"))
    assert beta["apiVersion"] == f"{crontabs}/v1beta1" and beta["spec"]["cronSpec"] == "* * * * */5"


def test_server_side_apply_tracks_managed_fields(kubectl, namespace, crontabs):
    manifest = CRONTAB.format(group=crontabs, name="ssa")
    kubectl("apply", "--server-side", "--field-manager=alice", "-n", namespace, "-f", "-", input=manifest)
    conflicting = manifest.replace("cron-image", "bob-image")
    err = kubectl("apply", "--server-side", "--field-manager=bob", "-n", namespace, "-f", "-",
                  input=conflicting, check=False).stderr
    assert "conflict" in err.lower() and ".spec.image" in err
    obj = _json(kubectl("get", f"crontabs.{crontabs}", "ssa", "-n", namespace, "-o", "json", "--show-managed-fields"))
    managers = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert "f:image" in managers["alice"]["fieldsV1"]["f:spec"]


def test_a_changed_schema_is_served_at_once(kubectl, namespace, crontabs):
    extended = CRONTAB_CRD.format(group=crontabs).replace(
        "              maxReplicas: {type: integer}\n",
        "              maxReplicas: {type: integer}\n              owner: {type: string, default: ops}\n")
    kubectl("apply", "-f", "-", input=extended)
    manifest = CRONTAB.format(group=crontabs, name="owned").replace("image: cron-image", "owner: dev")
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest)  # strict: the new field is known
    spec = _json(kubectl("get", f"crontabs.{crontabs}", "owned", "-n", namespace, "-o", "json"))["spec"]
    assert spec["owner"] == "dev"
    kubectl("apply", "-n", namespace, "-f", "-", input=CRONTAB.format(group=crontabs, name="defaulted"))
    spec = _json(kubectl("get", f"crontabs.{crontabs}", "defaulted", "-n", namespace, "-o", "json"))["spec"]
    assert spec["owner"] == "ops"


def test_names_taken_by_another_crd_are_not_accepted(kubectl, crontabs):
    clash = CRONTAB_CRD.format(group=crontabs).replace("name: crontabs.", "name: crontables.").replace(
        "plural: crontabs", "plural: crontables").replace("singular: crontab", "singular: crontable").replace(
        "shortNames: [ct]", "shortNames: [ctb]")
    kubectl("apply", "-f", "-", input=clash)
    try:
        def names_refused():
            crd = _json(kubectl("get", "crd", f"crontables.{crontabs}", "-o", "json"))
            return {c["type"]: c for c in (crd.get("status") or {}).get("conditions") or []}.get("NamesAccepted")
        accepted = wait_until(names_refused, "the NamesAccepted condition", 10)
        assert (accepted["status"], accepted["reason"]) == ("False", "KindConflict")
        assert accepted["message"] == '"CronTab" is already in use'
        assert "crontables" not in kubectl("api-resources", f"--api-group={crontabs}").stdout
    finally:
        kubectl("delete", "crd", f"crontables.{crontabs}", "--timeout=30s", check=False)


def test_watch_sees_custom_objects_come_and_go(k8s, namespace, crontabs):
    from kubernetes import client, watch

    api = client.CustomObjectsApi(k8s)
    listed = api.list_namespaced_custom_object(crontabs, "v1", namespace, "crontabs")
    body = {"apiVersion": f"{crontabs}/v1", "kind": "CronTab", "metadata": {"name": "watched"},
            "spec": {"cronSpec": "* * * * *"}}
    api.create_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", body)
    api.delete_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", "watched")
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_custom_object, crontabs, "v1", namespace, "crontabs",
                                      resource_version=listed["metadata"]["resourceVersion"], timeout_seconds=5):
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", "watched"), ("DELETED", "watched")]


def test_owned_objects_are_collected_and_finalizers_hold_deletion(k8s, namespace, crontabs):
    from kubernetes import client

    api, core = client.CustomObjectsApi(k8s), client.CoreV1Api(k8s)
    owner = api.create_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", {
        "apiVersion": f"{crontabs}/v1", "kind": "CronTab",
        "metadata": {"name": "owner", "finalizers": ["example.com/cleanup"]}, "spec": {"cronSpec": "* * * * *"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "owned", "ownerReferences": [{
        "apiVersion": f"{crontabs}/v1", "kind": "CronTab", "name": "owner", "uid": owner["metadata"]["uid"]}]}})
    api.delete_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", "owner")
    held = api.get_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", "owner")
    assert held["metadata"]["deletionTimestamp"]
    time.sleep(0.5)
    assert core.read_namespaced_config_map("owned", namespace)  # the owner still exists: nothing collected
    api.patch_namespaced_custom_object(crontabs, "v1", namespace, "crontabs", "owner",
                                       {"metadata": {"finalizers": None}})

    def collected() -> bool:
        try:
            core.read_namespaced_config_map("owned", namespace)
        except client.ApiException as e:
            return e.status == 404
        return False
    wait_until(collected, "the garbage collector to delete the owned ConfigMap", 20)


def test_deleting_the_crd_deletes_its_objects_and_stops_serving(kubectl, namespace, crontabs):
    kubectl("apply", "-n", namespace, "-f", "-", input=CRONTAB.format(group=crontabs, name="doomed"))
    kubectl("delete", "crd", f"crontabs.{crontabs}", "--timeout=30s")
    result = kubectl("get", f"crontabs.{crontabs}", "-n", namespace, check=False)
    assert result.returncode != 0
    assert f"crontabs.{crontabs}" not in kubectl("api-resources").stdout


def test_a_cluster_scoped_kind_is_served_without_namespaces(kubectl):
    group = f"c{secrets.token_hex(3)}.example.com"
    embedded = {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}
    crd = crd_manifest(group, "clusterthings", "ClusterThing", object_with_spec({"template": embedded}),
                       scope="Cluster")
    kubectl("apply", "-f", "-", input=crd)
    try:
        kubectl("wait", "--for=condition=Established", f"crd/clusterthings.{group}", "--timeout=20s")
        thing = f"apiVersion: {group}/v1\nkind: ClusterThing\nmetadata: {{name: one}}\nspec:\n  template: {{}}\n"
        err = kubectl("apply", "-f", "-", input=thing, check=False).stderr
        assert "spec.template.apiVersion: Required value" in err and "spec.template.kind: Required value" in err
        good = thing.replace("template: {}", "template: {apiVersion: v1, kind: Pod, metadata: {name: p}, x: 1}")
        kubectl("apply", "-f", "-", input=good)
        got = _json(kubectl("get", f"clusterthings.{group}", "one", "-o", "json"))
        assert "namespace" not in got["metadata"] and got["spec"]["template"]["x"] == 1
    finally:
        kubectl("delete", "crd", f"clusterthings.{group}", "--timeout=30s", check=False)
