"""A kopf operator written as kopf's documentation shows it: a custom resource gets a child ConfigMap (adopted:
owner reference), the handler's result lands in status, and a deletion handler runs before the object goes
(kopf holds deletion with its finalizer meanwhile). Run by tests/api/test_kopf_operator.py with `kopf run`."""

import kopf
import kubernetes

GROUP = "kopf.kfab.test"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.posting.level = 40  # only errors become Events: the test reads its own records, not the log
    kubernetes.config.load_kube_config()


@kopf.on.create(GROUP, "v1", "greetings")
def create_fn(spec, name, namespace, logger, **_):
    data = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-greeting"},
            "data": {"text": f"hello {spec.get('who', 'world')}"}}
    kopf.adopt(data)
    child = kubernetes.client.CoreV1Api().create_namespaced_config_map(namespace, data)
    logger.info("created %s", child.metadata.name)
    return {"child": child.metadata.name}


@kopf.on.delete(GROUP, "v1", "greetings")
def delete_fn(name, namespace, **_):
    kubernetes.client.CoreV1Api().create_namespaced_config_map(
        namespace, {"metadata": {"name": f"{name}-farewell"}, "data": {"said": "goodbye"}})
