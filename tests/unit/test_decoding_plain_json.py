"""Request bodies decoded by orjson where that gives exactly what the careful decoding (json module, duplicate
keys remembered, depth limited) gives; everything else goes the careful way."""

import json
import random

import pytest

from kfab.api import decoding

TRICKY = [
    b'{"a":1,"a":2}',                                   # a key given twice: its path is reported
    b'{"a":{"b":1,"b":2}}',
    b'{"a":1,"\\u0061":2}',                             # the same key, once escaped
    b'{"a" : {"b" : 1, "b": 2}}',
    b'{"k:{\\"name\\":\\"c\\"}":{},"k:{\\"name\\":\\"d\\"}":{}}',  # managedFields keys: escaped quotes
    b'{"a":"x:y[{","b":[1,2]}',                         # colons and brackets inside strings
    b'{"s":"\\\\","t":"\\\\\\"","u":":"}',              # backslashes pairing up before a quote
    b'[' * 201 + b']' * 201,                            # too deep: Go's words
    b'[' * 150 + b']' * 150,
    b'{"n":18446744073709551616}',                      # beyond 64 bits: an int, not orjson's float
    b'{"n":-9223372036854775809}',
    b'{"x":NaN}', b'{"x":1e400}', b'{"x":"\\ud800"}',   # what orjson refuses and the json module reads
    b'{"a":1', b'', b'\xff', b'\xef\xbb\xbf{}',         # errors keep the careful path's words
]


def outcome(decode, body):
    try:
        d = decode(body)
        return repr(d.value), d.duplicates
    except ValueError as e:
        return "error", str(e)


def careful(body):
    return outcome(decoding._load_json_carefully, body)


def decoded(body):
    return outcome(decoding.load_json, body)


@pytest.mark.parametrize("body", TRICKY)
def test_tricky_bodies_decode_as_carefully(body):
    assert decoded(body) == careful(body)


def test_duplicates_are_still_named():
    assert decoding.load_json(b'{"spec":{"replicas":1,"replicas":2}}').duplicates == ["spec.replicas"]


def test_plain_bodies_take_the_fast_path():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "managedFields": [
        {"manager": "m", "fieldsV1": {"f:spec": {"f:containers": {'k:{"name":"c"}': {}}}}}]},
        "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["a:b", "[{"]}]}}
    assert decoding._plain_json(json.dumps(pod).encode()) == pod


def random_value(rng: random.Random, depth: int = 0):
    pieces = ["a", ":", '"', "\\", "{", "[", "]", "}", ",", "é", "\n", "\u2028", "0"]
    if depth > 4 or rng.random() < 0.3:
        return rng.choice([1, -2, 3.5, True, None, 10 ** rng.randint(0, 25), -10 ** rng.randint(0, 25), 1e300,
                           "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))])
    if rng.random() < 0.5:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {"".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 4))}


def render(rng: random.Random, value) -> str:
    """JSON text of value, with keys repeated now and then, spacing and escapes varied."""
    if isinstance(value, dict):
        items = list(value.items())
        if items and rng.random() < 0.2:
            items.append((items[0][0], rng.choice([1, "z", [], {}])))
        return "{" + rng.choice([",", ", ", " ,\n"]).join(
            json.dumps(k, ensure_ascii=rng.random() < 0.5) + rng.choice([":", " : "]) + render(rng, v)
            for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(rng, v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


def test_random_bodies_decode_as_carefully():
    rng = random.Random(19)
    fast = 0
    for _ in range(3000):
        body = render(rng, random_value(rng)).encode()
        value = decoding._plain_json(body)
        if value is decoding._NOT_PLAIN:
            continue  # the careful path decodes it, as before
        fast += 1
        assert (repr(value), []) == careful(body), body
    assert fast > 1000
