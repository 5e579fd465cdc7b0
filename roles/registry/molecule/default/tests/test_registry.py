"""Role registry on the scenario's hosts (testinfra over SSH): the registry runs on its host, and a worker's
Podman pushes to it over plain HTTP under the name pods use (by the role's registries.conf.d, no flag)."""

from pathlib import Path

import yaml

GROUPS = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]["children"]
REGISTRY_HOST = next(iter(GROUPS["registry"]["hosts"]))
WORKER = next(iter(GROUPS["workers"]["hosts"]))
REGISTRY = f"{REGISTRY_HOST}:5000"   # the role's kfab_registry_name
testinfra_hosts = [f"ansible://{REGISTRY_HOST}"]


def test_registry_runs_and_answers(host):
    service = host.service("docker-registry")
    assert service.is_running and service.is_enabled
    assert host.check_output("curl -sS --fail http://127.0.0.1:5000/v2/") == "{}"


def test_a_worker_pushes_to_it_by_name(host, request):
    worker = host.get_host(f"ansible://{WORKER}", ansible_inventory=request.config.option.ansible_inventory)
    assert REGISTRY in worker.file("/etc/containers/registries.conf.d/kfab-registry.conf").content_string
    image = f"{REGISTRY}/molecule/empty:{WORKER}"
    worker.check_output(f"tar -cf /root/empty.tar -T /dev/null && podman import -q /root/empty.tar {image}")
    worker.check_output(f"podman push -q {image}")
    tags = host.check_output("curl -sS --fail http://127.0.0.1:5000/v2/molecule/empty/tags/list")
    assert f'"{WORKER}"' in tags, tags
