"""Role state-store on the scenario's hosts (testinfra over SSH): every etcd host runs a member of one
3-member cluster, its data and key the etcd user's only; a key written through one member is read through
another, with the API server's own client certificate."""

import base64
import json
from pathlib import Path

import yaml

MEMBERS = yaml.safe_load((Path(__file__).parents[1] / "inventory.yml").read_text())["all"]["children"][
    "control_plane"]["hosts"]
testinfra_hosts = [f"ansible://{name}" for name in MEMBERS]

ETCD_PKI = "/etc/kfab-etcd"
CLIENT = "/var/lib/kfab/pki"   # the API server's etcd client pair (state_store_etcd_client_dir)


def _etcd(host, address: str, path: str, body: dict) -> dict:
    # etcd's v3 JSON gateway, authenticated as the API server is (client-cert-auth)
    out = host.check_output(
        f"curl -sS --fail --cacert {ETCD_PKI}/ca.crt --cert {CLIENT}/etcd-client.crt --key {CLIENT}/etcd-client.key "
        f"-X POST -d '{json.dumps(body)}' https://{address}:2379{path}")
    return json.loads(out)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_member_runs_with_private_data(host):
    service = host.service("etcd")
    assert service.is_running and service.is_enabled
    data = host.file("/var/lib/etcd/kfab")
    assert data.is_directory and data.user == "etcd" and data.mode == 0o700
    assert host.file(f"{ETCD_PKI}/member.key").user == "etcd"
    assert host.file(f"{CLIENT}/etcd-client.key").mode == 0o600


def test_one_cluster_of_every_member(host):
    me = host.ansible.get_variables()["inventory_hostname"]
    members = _etcd(host, MEMBERS[me]["ansible_host"], "/v3/cluster/member/list", {})["members"]
    assert sorted(m["name"] for m in members) == sorted(MEMBERS), members


def test_a_write_through_one_member_is_read_through_another(host):
    me = host.ansible.get_variables()["inventory_hostname"]
    other = next(name for name in MEMBERS if name != me)
    key, value = _b64(f"/molecule/{me}"), _b64(f"written through {me}")
    _etcd(host, MEMBERS[me]["ansible_host"], "/v3/kv/put", {"key": key, "value": value})
    read = _etcd(host, MEMBERS[other]["ansible_host"], "/v3/kv/range", {"key": key})
    assert [kv["value"] for kv in read.get("kvs", [])] == [value], read
