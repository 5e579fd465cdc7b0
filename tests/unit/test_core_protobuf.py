"""kubectl's protobuf request bodies decode to the objects JSON would have carried."""

import pytest

from kfab.api import protobuf
from kfab.objects.errors import APIError


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(number: int, value) -> bytes:
    if isinstance(value, bool) or isinstance(value, int):
        return varint(number << 3) + varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def test_configmap_with_labels_and_data():
    meta = field(1, "settings") + field(2, "") + field(3, "") + entry(11, "app", "web") + field(8, b"")
    raw = field(1, meta) + entry(2, "mode", "fast") + entry(2, "empty", "")
    obj = protobuf.decode(envelope("v1", "ConfigMap", raw))
    assert obj == {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "labels": {"app": "web"}},
                   "data": {"mode": "fast", "empty": ""}}


def test_zero_values_are_dropped_except_in_pointer_fields():
    container = field(1, "c") + field(2, "nginx") + field(14, "") + field(8, b"")
    template = field(2, field(2, container) + field(3, "") + field(11, False))
    spec = field(1, 0) + field(3, template) + field(5, 0) + field(7, False)
    obj = protobuf.decode(envelope("apps/v1", "Deployment", field(1, field(1, "web")) + field(2, spec)))
    assert obj["spec"] == {"replicas": 0, "template": {"spec": {"containers": [
        {"name": "c", "image": "nginx", "resources": {}}]}}}


def test_int_or_string_and_negative_ints():
    port = field(3, 80) + field(4, field(1, 1) + field(3, "http"))
    svc = field(1, field(1, "s")) + field(2, field(1, port) + field(12, -1))
    obj = protobuf.decode(envelope("v1", "Service", svc))
    assert obj["spec"]["ports"] == [{"port": 80, "targetPort": "http"}]
    assert obj["spec"]["healthCheckNodePort"] == -1


def test_unknown_field_outside_status_is_a_415():
    with pytest.raises(APIError) as e:
        protobuf.decode(envelope("v1", "ConfigMap", field(1, field(1, "x")) + field(99, "?")))
    assert e.value.code == 415 and "field 99 of ConfigMap" in e.value.message


def test_unknown_kind_and_bad_envelope():
    with pytest.raises(APIError) as e:
        protobuf.decode(envelope("v1", "Pod", b""))
    assert e.value.code == 415
    with pytest.raises(APIError) as e:
        protobuf.decode(b"not-k8s")
    assert e.value.code == 400
    with pytest.raises(APIError) as e:
        protobuf.decode(protobuf.MAGIC + b"\x0a\xff")
    assert e.value.code == 400
