"""Once history is compacted, clients asking for it get 410 Expired and know to list again."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client, config, watch

from tests.api.conftest import exists, start_server, stop_server
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def compacting_server(tmp_path_factory):
    proc, server = start_server(tmp_path_factory.mktemp("kfab-compacting"), "--compaction-interval", "0.5")
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    try:
        # "default" holds kube-root-ca.crt (as every namespace): let the controller put it in before a test lists
        core = client.CoreV1Api(api)
        wait_until("kube-root-ca.crt in default", lambda: exists(lambda: core.read_namespaced_config_map(
            "kube-root-ca.crt", "default")))
        yield api
    finally:
        api.close()
        stop_server(proc)


def wait_until_compacted(core, revision: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            core.list_namespaced_config_map("default", resource_version=revision, resource_version_match="Exact")
        except client.ApiException as e:
            if e.status == 410:
                return
            raise
        time.sleep(0.1)
    raise AssertionError(f"revision {revision} was not compacted within {deadline}s")


def test_list_continue_and_watch_from_compacted_revision_are_410(compacting_server):
    core = client.CoreV1Api(compacting_server)
    for name in ("a", "b", "c"):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    page = core.list_namespaced_config_map("default", limit=1)
    token = page.metadata._continue
    assert token
    core.create_namespaced_config_map("default", {"metadata": {"name": "d"}})  # history moves past the page

    wait_until_compacted(core, page.metadata.resource_version)
    with pytest.raises(client.ApiException) as e:
        core.list_namespaced_config_map("default", limit=1, _continue=token)
    assert e.value.status == 410 and json.loads(e.value.body)["reason"] == "Expired"

    # revision 1 predates the server's watch cache too: the store is asked, and it has forgotten
    with pytest.raises(client.ApiException) as e:
        list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version="1",
                                  timeout_seconds=5))
    assert e.value.status == 410

    # what a client does next: list again and watch from there
    fresh = core.list_namespaced_config_map("default")
    assert [c.metadata.name for c in fresh.items] == ["a", "b", "c", "d", "kube-root-ca.crt"]
