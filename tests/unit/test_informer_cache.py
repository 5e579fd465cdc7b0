"""An informer's cache holds objects without metadata.managedFields (as kube's controller-manager and scheduler
strip them), whether they come from a list, a watch event or the controller's own write."""

from kfab.client import rt_of
from kfab.machinery.informer import Informer

POD = rt_of("Pod")


def pod(name: str, rv: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "resourceVersion": str(rv), "labels": {"a": "b"},
                         "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1",
                                            "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}}}]},
            "spec": {"nodeName": "n1"}}


def test_cached_objects_have_no_managed_fields_and_handlers_see_the_cached_ones():
    informer = Informer(client=None, rt=POD)
    seen = []
    informer.add_handlers(lambda obj: seen.append(obj), lambda old, new: seen.append(new))
    informer._replace([pod("listed", 1)])
    informer._apply_event("ADDED", pod("watched", 2))
    mine = pod("written", 3)
    informer.remember_write(mine)
    for name in ("listed", "watched", "written"):
        cached = informer.get_by("default", name)
        assert "managedFields" not in cached["metadata"]
        assert cached["metadata"]["labels"] == {"a": "b"} and cached["spec"] == {"nodeName": "n1"}
    assert [o["metadata"]["name"] for o in seen] == ["listed", "watched"]
    assert all("managedFields" not in o["metadata"] for o in seen)
    assert "managedFields" in mine["metadata"], "the caller's own object is left as it was"
