"""etcd over TLS (etcd+https://): members verified against the CA, the client's certificate presented; a wrong
CA or a missing client certificate is refused with an error naming the store, and bad URLs never dial."""

import asyncio

import pytest

from kfab.pki import ca as pki
from kfab.store import BadStoreURL, StoreUnavailable, open_store


def test_a_tls_store_reads_and_writes_and_names_itself(etcd_tls_cluster):
    async def body():
        store = await open_store(etcd_tls_cluster.url)
        try:
            made = await store.create("/registry/tls/a", b"1")
            assert (await store.get("/registry/tls/a")).mod_revision == made.mod_revision
            return store.name
        finally:
            await store.close()

    assert asyncio.run(body()) == "etcd+https://" + ",".join(etcd_tls_cluster.endpoints)


def test_members_with_a_certificate_from_another_ca_are_refused(etcd_tls_cluster, tmp_path):
    stranger = pki.new_ca("not-the-etcd-ca")
    (tmp_path / "other-ca.crt").write_bytes(stranger.cert_pem)
    url = etcd_tls_cluster.url.replace(f"cacert={etcd_tls_cluster.dir}/pki/ca.crt", f"cacert={tmp_path}/other-ca.crt")
    with pytest.raises(StoreUnavailable) as err:
        asyncio.run(open_store(url))
    assert "etcd+https://" + etcd_tls_cluster.endpoints[0] in str(err.value)


def test_a_client_without_a_certificate_is_refused_by_client_cert_auth(etcd_tls_cluster):
    url = etcd_tls_cluster.url.split("&cert=")[0]  # the CA only
    with pytest.raises(StoreUnavailable) as err:
        asyncio.run(open_store(url))
    assert "no member answered" in str(err.value)


@pytest.mark.parametrize("url, says", [
    ("etcd+https://127.0.0.1:2379", "needs cacert=PATH"),
    ("etcd://127.0.0.1:2379?cacert=/etc/hostname", "need the etcd+https:// scheme"),
    ("etcd+https://127.0.0.1:2379?cacert=/no/such/ca.crt", "cacert=/no/such/ca.crt: cannot read"),
    ("etcd+https://127.0.0.1:2379?cacert=/etc/hostname&key=/etc/hostname", "both cert=PATH and key=PATH"),
    ("etcd+https://127.0.0.1:2379?cacert=/etc/hostname&insecure=1", "unknown parameter 'insecure'"),
])
def test_bad_tls_store_urls_name_the_problem(url, says):
    with pytest.raises(BadStoreURL) as err:
        asyncio.run(open_store(url))
    assert url in str(err.value) and says in str(err.value)
