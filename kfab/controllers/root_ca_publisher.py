"""Root CA publisher: every namespace has the ConfigMap `kube-root-ca.crt` whose `ca.crt` is the cluster CA,
so pods verify the API server at kubernetes.default (kube-controller-manager's root-ca-cert-publisher).
The CA is the one in the controller-manager's own kubeconfig, as kube-controller-manager's default when
--root-ca-file is not given. A deleted or edited ConfigMap is put back.
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.controllers.serviceaccounts import is_active
from kfab.machinery.controller import Controller, split_key

NAMESPACE = rt_of("Namespace")
CONFIG_MAP = rt_of("ConfigMap")
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


class RootCAPublisher(Controller):
    name = "root-ca-cert-publisher"
    workers = 2

    def setup(self) -> None:
        ca = self.client.config.ca_pem
        self.ca_text = ca.decode() if ca else ""
        self.namespaces = self.ctx.informer(NAMESPACE)
        self.config_maps = self.ctx.informer(CONFIG_MAP)
        self.namespaces.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new))
        self.config_maps.add_handlers(on_update=lambda old, new: self._config_map_changed(new),
                                      on_delete=self._config_map_changed)

    def _config_map_changed(self, config_map: dict) -> None:
        if config_map["metadata"].get("name") == ROOT_CA_CONFIG_MAP:
            self.enqueue(config_map["metadata"]["namespace"])

    async def reconcile(self, key: str) -> float | None:
        _, namespace = split_key(key)
        if not self.ca_text or not is_active(self.namespaces.get(key)):
            return None
        data = {"ca.crt": self.ca_text}
        current = self.config_maps.get_by(namespace, ROOT_CA_CONFIG_MAP)
        try:
            if current is None:
                made = await self.client.create(CONFIG_MAP, {
                    "apiVersion": "v1", "kind": "ConfigMap", "data": data,
                    "metadata": {"name": ROOT_CA_CONFIG_MAP, "namespace": namespace,
                                 "annotations": {"kubernetes.io/description": DESCRIPTION}}})
            elif current.get("data") != data:
                made = await self.client.update(CONFIG_MAP, dict(current, data=data))
            else:
                return None
        except APIStatusError as e:
            if e.already_exists or e.not_found or e.code == 403:  # the cache is behind / namespace going away
                return None
            raise
        self.config_maps.remember_write(dict(made, apiVersion="v1", kind="ConfigMap"))
        return None
