"""Discovery documents describe every kind and subresource in the registry, in both forms kubectl reads."""

from kfab.api.discovery import aggregated, api_group_list, api_resource_list
from kfab.objects.registry import REGISTRY


def test_every_resource_and_subresource_is_listed():
    for group, versions in REGISTRY.group_versions().items():
        for version in versions:
            listed = {r["name"]: r for r in api_resource_list(REGISTRY, group, version)["resources"]}
            for rt in REGISTRY.in_group_version(group, version):
                entry = listed[rt.plural]
                assert (entry["kind"], entry["namespaced"], entry["singularName"]) == \
                    (rt.kind, rt.namespaced, rt.singular)
                assert entry.get("shortNames", []) == list(rt.short_names)
                for sub in rt.subresources:
                    assert listed[f"{rt.plural}/{sub}"]["verbs"]


def test_scale_subresource_answers_with_autoscaling_scale():
    listed = {r["name"]: r for r in api_resource_list(REGISTRY, "apps", "v1")["resources"]}
    scale = listed["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")


def test_aggregated_discovery_matches_legacy():
    core = aggregated(REGISTRY, core=True)["items"]
    assert [g["metadata"]["name"] for g in core] == [""]
    pods = next(r for r in core[0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced" and pods["shortNames"] == ["po"] and "all" in pods["categories"]
    named = [g["metadata"]["name"] for g in aggregated(REGISTRY, core=False)["items"]]
    assert named == [g["name"] for g in api_group_list(REGISTRY)["groups"]]
