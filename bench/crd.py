"""CustomResourceDefinition figures (issue 13), on one `kfab server` (SQLite) started and stopped here:

- CRD Established -> first custom resource served: the time from the moment the CRD's Established condition
  can be read until a POST of the first object of the new kind answers 201 (and from the CRD's create);
- CR create latency with a 50-property structural schema (types, ranges, patterns, enums, defaults) next to
  ConfigMap create latency in the same run (the baseline): sequential creates, p50/p99.

    .venv/bin/python bench/crd.py [--crds 5] [--creates 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api import ssl_from_kubeconfig  # noqa: E402
from tests.api.conftest import start_server, stop_server  # noqa: E402

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PROPERTIES = 50


def wide_schema() -> dict:
    """50 typed properties: a fifth each integer with range, string with pattern, enum, defaulted, boolean."""
    props = {}
    for i in range(PROPERTIES):
        kind = i % 5
        if kind == 0:
            props[f"count{i}"] = {"type": "integer", "minimum": 0, "maximum": 1000}
        elif kind == 1:
            props[f"name{i}"] = {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 63}
        elif kind == 2:
            props[f"mode{i}"] = {"type": "string", "enum": ["fast", "safe", "off"]}
        elif kind == 3:
            props[f"level{i}"] = {"type": "integer", "default": 3}
        else:
            props[f"flag{i}"] = {"type": "boolean"}
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}


def wide_spec() -> dict:
    spec = {}
    for name in wide_schema()["properties"]["spec"]["properties"]:
        if name.startswith("count"):
            spec[name] = 42
        elif name.startswith("name"):
            spec[name] = "web-frontend"
        elif name.startswith("mode"):
            spec[name] = "safe"
        elif name.startswith("flag"):
            spec[name] = True
    return spec


def crd(group: str, schema: dict) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


def widget(group: str, name: str, spec: dict) -> dict:
    return {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def established_to_served(session: aiohttp.ClientSession, url: str, group: str) -> tuple[float, float]:
    """(ms from CRD create to Established readable, ms from Established to the first CR answered 201)."""
    start = time.perf_counter()
    async with session.post(url + CRDS, json=crd(group, wide_schema())) as resp:
        assert resp.status == 201, await resp.text()
    while True:
        async with session.get(f"{url}{CRDS}/widgets.{group}") as resp:
            conditions = (await resp.json()).get("status", {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            break
        await asyncio.sleep(0.001)
    established = time.perf_counter()
    while True:
        async with session.post(f"{url}/apis/{group}/v1/namespaces/default/widgets",
                                json=widget(group, "first", wide_spec())) as resp:
            if resp.status == 201:
                break
            assert resp.status == 404, await resp.text()
    served = time.perf_counter()
    return (established - start) * 1000, (served - established) * 1000


async def create_latencies(session: aiohttp.ClientSession, path: str, bodies) -> list[float]:
    times = []
    for body in bodies:
        start = time.perf_counter()
        async with session.post(path, json=body) as resp:
            assert resp.status == 201, await resp.text()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def summary(label: str, times: list[float]) -> str:
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    return f"{label:<34} p50 {statistics.median(times):6.1f} ms   p99 {p99:6.1f} ms   (n={len(times)})"


async def run(url: str, ctx, crds: int, creates: int) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        figures = [await established_to_served(session, url, f"b{i}.bench.kfab") for i in range(crds)]
        to_established = sorted(f[0] for f in figures)
        to_served = sorted(f[1] for f in figures)
        print(f"CRD create -> Established readable  median {statistics.median(to_established):6.1f} ms   "
              f"max {to_established[-1]:6.1f} ms   (n={crds})")
        print(f"Established -> first CR served      median {statistics.median(to_served):6.1f} ms   "
              f"max {to_served[-1]:6.1f} ms   (n={crds})")
        group = "b0.bench.kfab"
        cms = await create_latencies(session, f"{url}/api/v1/namespaces/default/configmaps", (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}, "data": {"a": "b" * 200}}
            for i in range(creates)))
        crs = await create_latencies(session, f"{url}/apis/{group}/v1/namespaces/default/widgets", (
            widget(group, f"w{i}", wide_spec()) for i in range(creates)))
        print(summary("ConfigMap create (baseline)", cms))
        print(summary(f"CR create, {PROPERTIES}-property schema", crs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", type=int, default=5)
    parser.add_argument("--creates", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kfab-bench-crd-") as tmp:
        proc, server = start_server(Path(tmp), "--disable-controllers")
        try:
            url, ctx = ssl_from_kubeconfig(server.kubeconfig, Path(tmp))
            asyncio.run(run(url, ctx, args.crds, args.creates))
        finally:
            stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
