"""DefaultTolerationSeconds: which new pods get the not-ready/unreachable tolerations, and for how long."""

from __future__ import annotations

import pytest

from kfab.api.toleration_admission import NOT_READY, UNREACHABLE, DefaultTolerationSeconds


def admitted(tolerations=None, **seconds) -> list[dict]:
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    if tolerations is not None:
        pod["spec"]["tolerations"] = tolerations
    DefaultTolerationSeconds(**seconds).admit(pod)
    return pod["spec"].get("tolerations")


def test_a_pod_without_tolerations_gets_both_for_the_configured_seconds():
    assert admitted(not_ready=10, unreachable=3) == [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3}]
    assert [t["tolerationSeconds"] for t in admitted()] == [300, 300]     # upstream's defaults


def test_a_pod_that_tolerates_a_taint_keeps_its_own_toleration():
    own = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    assert admitted([own], unreachable=3) == [own, {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute",
                                                    "tolerationSeconds": 300}]
    forever = {"key": NOT_READY, "operator": "Exists"}                  # every effect, no limit
    assert [t["key"] for t in admitted([forever])] == [NOT_READY, UNREACHABLE]
    everything = {"operator": "Exists"}                                  # no key: tolerates every taint
    assert admitted([everything]) == [everything]
    no_schedule_only = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}
    assert [t.get("tolerationSeconds") for t in admitted([no_schedule_only])] == [None, 300, 300]


def test_negative_seconds_are_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--default-unreachable-toleration-seconds must be 0 or more"):
        DefaultTolerationSeconds(unreachable=-1)
