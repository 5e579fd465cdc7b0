"""The Service variables the node agent gives containers, as the kubelet's envvars (pkg/kubelet/envvars)."""

import asyncio

from kfab.node.containers import resolve_env
from kfab.node.service_env import service_env


def svc(name, ns, ip, *ports):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "ports": [dict(p) for p in ports]}}


KUBERNETES = svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})
REDIS = svc("redis-primary", "app", "10.96.0.20", {"port": 6379}, {"name": "metrics", "port": 9121})
HEADLESS = svc("db", "app", "None", {"port": 5432})
ELSEWHERE = svc("web", "other", "10.96.0.30", {"port": 80})


def pod(ns="app", **spec):
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


def test_the_kubernetes_service_in_the_kubelets_two_forms():
    env = service_env([KUBERNETES], pod())
    assert env == {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                   "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
                   "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
                   "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1"}


def test_own_namespace_services_with_links_none_headless_none_from_elsewhere():
    env = service_env([KUBERNETES, REDIS, HEADLESS, ELSEWHERE], pod())
    assert env["REDIS_PRIMARY_SERVICE_HOST"] == "10.96.0.20" and env["REDIS_PRIMARY_SERVICE_PORT"] == "6379"
    assert env["REDIS_PRIMARY_SERVICE_PORT_METRICS"] == "9121"
    assert env["REDIS_PRIMARY_PORT"] == "tcp://10.96.0.20:6379"
    assert env["REDIS_PRIMARY_PORT_9121_TCP_ADDR"] == "10.96.0.20"
    assert not [k for k in env if k.startswith(("DB_", "WEB_"))]


def test_enable_service_links_false_keeps_only_the_master_service():
    env = service_env([KUBERNETES, REDIS], pod(enableServiceLinks=False))
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert not [k for k in env if k.startswith("REDIS")]


def test_a_service_named_kubernetes_in_the_pods_namespace_wins():
    own = svc("kubernetes", "app", "10.96.0.99", {"port": 8443})
    assert service_env([own, KUBERNETES], pod())["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"
    assert service_env([KUBERNETES, own], pod())["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"


def test_the_containers_own_env_wins_and_may_refer_to_service_variables():
    container = {"env": [{"name": "KUBERNETES_SERVICE_PORT", "value": "6443"},
                         {"name": "API", "value": "https://$(KUBERNETES_SERVICE_HOST)"}]}

    async def no_lookup(kind, ns, name):
        return None
    env = asyncio.run(resolve_env(pod(), container, no_lookup, "10.244.1.2", "10.0.0.2",
                                  base=service_env([KUBERNETES], pod())))
    assert env["KUBERNETES_SERVICE_PORT"] == "6443" and env["API"] == "https://10.96.0.1"
