"""Watch through the official client: resume from a resourceVersion and see every later change, in order."""

from kubernetes import client, watch


def test_watch_resumes_from_a_resource_version(k8s, namespace):
    api = client.CoreV1Api(k8s)
    first = api.create_namespaced_config_map(namespace, {"metadata": {"name": "c1"}, "data": {"v": "1"}})
    api.create_namespaced_config_map(namespace, {"metadata": {"name": "c2"}})
    api.patch_namespaced_config_map("c1", namespace, {"data": {"v": "2"}})
    api.delete_namespaced_config_map("c2", namespace)

    seen = []
    stream = watch.Watch()
    for event in stream.stream(api.list_namespaced_config_map, namespace,
                               resource_version=first.metadata.resource_version,
                               timeout_seconds=20, _request_timeout=30):
        seen.append((event["type"], event["object"].metadata.name, event["object"].data))
        if len(seen) == 3:
            stream.stop()
    assert seen == [("ADDED", "c2", None), ("MODIFIED", "c1", {"v": "2"}), ("DELETED", "c2", None)]


def test_many_watchers_see_the_same_events(k8s, namespace):
    import concurrent.futures

    api = client.CoreV1Api(k8s)
    start = api.list_namespaced_config_map(namespace).metadata.resource_version

    def watch_three():
        out = []
        stream = watch.Watch()
        for event in stream.stream(client.CoreV1Api(k8s).list_namespaced_config_map, namespace,
                                   resource_version=start, timeout_seconds=20, _request_timeout=30):
            out.append((event["type"], event["object"].metadata.name))
            if len(out) == 3:
                stream.stop()
        return out

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(watch_three) for _ in range(8)]
        for name in ("a", "b", "c"):
            api.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
        results = [f.result(timeout=60) for f in futures]
    assert all(r == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")] for r in results)
