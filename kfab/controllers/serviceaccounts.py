"""ServiceAccounts controller: every namespace has a `default` ServiceAccount, made again when deleted
(kube-controller-manager's serviceaccount-controller). Pods that name no ServiceAccount run as it.
"""

from __future__ import annotations

from kfab.client import APIStatusError, rt_of
from kfab.machinery.controller import Controller, split_key
from kfab.objects.meta import status_of

NAMESPACE = rt_of("Namespace")
SERVICE_ACCOUNT = rt_of("ServiceAccount")
DEFAULT_SERVICE_ACCOUNT = "default"


def is_active(namespace: dict | None) -> bool:
    """Exists and is not being deleted: nothing new is made in a namespace on its way out."""
    if namespace is None:
        return False
    return not namespace["metadata"].get("deletionTimestamp") and \
        status_of(namespace).get("phase") != "Terminating"


class ServiceAccountsController(Controller):
    name = "serviceaccount-controller"
    workers = 2

    def setup(self) -> None:
        self.namespaces = self.ctx.informer(NAMESPACE)
        self.accounts = self.ctx.informer(SERVICE_ACCOUNT)
        self.namespaces.add_handlers(self.enqueue_obj, lambda old, new: self.enqueue_obj(new))
        self.accounts.add_handlers(on_delete=self._account_deleted)

    def _account_deleted(self, account: dict) -> None:
        if account["metadata"].get("name") == DEFAULT_SERVICE_ACCOUNT:
            self.enqueue(account["metadata"]["namespace"])

    async def reconcile(self, key: str) -> float | None:
        _, namespace = split_key(key)
        if not is_active(self.namespaces.get(key)):
            return None
        if self.accounts.get_by(namespace, DEFAULT_SERVICE_ACCOUNT) is not None:
            return None
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}}
        try:
            made = await self.client.create(SERVICE_ACCOUNT, account)
        except APIStatusError as e:
            if e.already_exists or e.not_found or e.code == 403:  # there already / namespace gone or terminating
                return None
            raise
        self.accounts.remember_write(dict(made, apiVersion="v1", kind="ServiceAccount"))
        return None
