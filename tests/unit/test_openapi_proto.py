"""The /openapi/v2 protobuf decodes with the protobuf library against gnostic's OpenAPIv2.proto layout."""

import json

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from kfab.api import openapi_proto
from kfab.api.openapi import build_v2
from kfab.objects.registry import REGISTRY

# The subset of google/gnostic openapiv2/OpenAPIv2.proto these tests read: (message, [(field, number, type)]).
# A type is a scalar name or ".openapi.v2.<Message>"; "*" marks repeated fields.
GNOSTIC = {
    "Document": [("swagger", 1, "string"), ("info", 2, ".Info"), ("paths", 8, ".Paths"),
                 ("definitions", 9, ".Definitions")],
    "Info": [("title", 1, "string"), ("version", 2, "string")],
    "Paths": [("path", 2, "*.NamedPathItem")],
    "NamedPathItem": [("name", 1, "string"), ("value", 2, ".PathItem")],
    "PathItem": [("get", 2, ".Operation"), ("post", 4, ".Operation"), ("patch", 8, ".Operation"),
                 ("parameters", 9, "*.ParametersItem")],
    "Operation": [("operation_id", 5, "string"), ("consumes", 7, "*string"),
                  ("parameters", 8, "*.ParametersItem"), ("responses", 9, ".Responses"),
                  ("vendor_extension", 13, "*.NamedAny")],
    "Responses": [("response_code", 1, "*.NamedResponseValue")],
    "NamedResponseValue": [("name", 1, "string"), ("value", 2, ".ResponseValue")],
    "ResponseValue": [("response", 1, ".Response")],
    "Response": [("description", 1, "string"), ("schema", 2, ".SchemaItem")],
    "SchemaItem": [("schema", 1, ".Schema")],
    "ParametersItem": [("parameter", 1, ".Parameter")],
    "Parameter": [("body_parameter", 1, ".BodyParameter"), ("non_body_parameter", 2, ".NonBodyParameter")],
    "BodyParameter": [("name", 2, "string"), ("in", 3, "string"), ("required", 4, "bool"),
                      ("schema", 5, ".Schema")],
    "NonBodyParameter": [("query_parameter_sub_schema", 3, ".QueryParameterSubSchema"),
                         ("path_parameter_sub_schema", 4, ".PathParameterSubSchema")],
    "QueryParameterSubSchema": [("in", 2, "string"), ("name", 4, "string"), ("type", 6, "string"),
                                ("unique_items", 20, "bool")],
    "PathParameterSubSchema": [("required", 1, "bool"), ("in", 2, "string"), ("name", 4, "string"),
                               ("type", 5, "string")],
    "Definitions": [("additional_properties", 1, "*.NamedSchema")],
    "NamedSchema": [("name", 1, "string"), ("value", 2, ".Schema")],
    "Schema": [("_ref", 1, "string"), ("format", 2, "string"), ("description", 4, "string"),
               ("required", 19, "*string"), ("additional_properties", 21, ".AdditionalPropertiesItem"),
               ("type", 22, ".TypeItem"), ("items", 23, ".ItemsItem"), ("properties", 25, ".Properties"),
               ("vendor_extension", 31, "*.NamedAny")],
    "AdditionalPropertiesItem": [("schema", 1, ".Schema"), ("boolean", 2, "bool")],
    "TypeItem": [("value", 1, "*string")],
    "ItemsItem": [("schema", 1, "*.Schema")],
    "Properties": [("additional_properties", 1, "*.NamedSchema")],
    "NamedAny": [("name", 1, "string"), ("value", 2, ".Any")],
    "Any": [("yaml", 2, "string")],
}
_SCALARS = {"string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL}


@pytest.fixture(scope="module")
def Document():
    file = descriptor_pb2.FileDescriptorProto(name="kfab_test_openapiv2.proto", package="openapi.v2",
                                              syntax="proto3")
    for message, fields in GNOSTIC.items():
        m = file.message_type.add(name=message)
        for name, number, kind in fields:
            repeated = kind.startswith("*")
            kind = kind.lstrip("*")
            f = m.field.add(name=name, number=number,
                            label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if repeated
                            else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if kind in _SCALARS:
                f.type = _SCALARS[kind]
            else:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                f.type_name = ".openapi.v2" + kind
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("openapi.v2.Document"))


@pytest.fixture(scope="module")
def decoded(Document):
    doc = Document()
    doc.ParseFromString(openapi_proto.document(build_v2(REGISTRY)))
    return doc


def definition(doc, name):
    return next(d.value for d in doc.definitions.additional_properties if d.name == name)


def prop(schema, name):
    return next(p.value for p in schema.properties.additional_properties if p.name == name)


def test_document_header_and_every_definition(decoded):
    swagger = build_v2(REGISTRY)
    assert decoded.swagger == "2.0" and decoded.info.title == "Kubernetes"
    assert [d.name for d in decoded.definitions.additional_properties] == list(swagger["definitions"])


def test_schemas_keep_types_refs_required_and_descriptions(decoded):
    deployment = definition(decoded, "io.k8s.api.apps.v1.Deployment")
    assert list(deployment.type.value) == ["object"]
    assert list(deployment.required) == ["spec"]
    spec = prop(deployment, "spec")
    assert spec._ref == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    assert spec.description == "Specification of the desired behavior of the Deployment."
    replicas = prop(definition(decoded, "io.k8s.api.apps.v1.DeploymentSpec"), "replicas")
    assert (list(replicas.type.value), replicas.format) == (["integer"], "int32")
    labels = prop(definition(decoded, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"), "labels")
    assert list(labels.additional_properties.schema.type.value) == ["string"]
    containers = prop(definition(decoded, "io.k8s.api.core.v1.PodSpec"), "containers")
    assert containers.items.schema[0]._ref == "#/definitions/io.k8s.api.core.v1.Container"


def test_vendor_extensions_travel_as_yaml(decoded):
    # kubectl finds a kind's schema by x-kubernetes-group-version-kind, parsed from Any.yaml.
    deployment = definition(decoded, "io.k8s.api.apps.v1.Deployment")
    [gvk] = [e for e in deployment.vendor_extension if e.name == "x-kubernetes-group-version-kind"]
    assert json.loads(gvk.value.yaml) == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    containers = prop(definition(decoded, "io.k8s.api.core.v1.PodSpec"), "containers")
    merge_key = {e.name: json.loads(e.value.yaml) for e in containers.vendor_extension}
    assert merge_key["x-kubernetes-patch-merge-key"] == "name"


def test_paths_operations_and_parameters(decoded):
    paths = {p.name: p.value for p in decoded.paths.path}
    pods = paths["/api/v1/namespaces/{namespace}/pods"]
    assert pods.get.operation_id == "listCoreV1NamespacedPod"
    body = pods.post.parameters[0].parameter.body_parameter
    assert (body.name, body.required, body.schema._ref) == ("body", True, "#/definitions/io.k8s.api.core.v1.Pod")
    query = {p.parameter.non_body_parameter.query_parameter_sub_schema.name for p in pods.post.parameters[1:]}
    assert {"dryRun", "fieldManager", "fieldValidation"} <= query
    namespace = pods.parameters[0].parameter.non_body_parameter.path_parameter_sub_schema
    assert (namespace.name, getattr(namespace, "in"), namespace.required) == ("namespace", "path", True)
    patch = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].patch
    assert "application/strategic-merge-patch+json" in patch.consumes
    ok = next(r.value.response for r in patch.responses.response_code if r.name == "200")
    assert ok.schema.schema._ref == "#/definitions/io.k8s.api.apps.v1.Deployment"


def test_wire_details():
    assert openapi_proto._varint(300) == b"\xac\x02"
    assert openapi_proto._varint(-1) == b"\xff" * 9 + b"\x01"
    # additionalProperties: false is a oneof member, so it is written even though it is the default value.
    assert openapi_proto.schema({"additionalProperties": False}) == b"\xaa\x01\x02\x10\x00"
