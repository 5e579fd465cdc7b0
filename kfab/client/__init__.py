"""A small async Kubernetes API client (aiohttp, dict objects): used by the controllers, scheduler, node agents."""

from kfab.client.client import APIStatusError, Client, WatchExpired, retry_on_conflict, rt_of
from kfab.client.kubeconfig import ClientConfig, KubeconfigError, load_kubeconfig

__all__ = ["APIStatusError", "Client", "ClientConfig", "KubeconfigError", "WatchExpired", "load_kubeconfig",
           "retry_on_conflict", "rt_of"]
