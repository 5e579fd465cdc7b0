"""Shared pieces of the fuzz suites (hypothesis): the budget, JSON-ish strategies, and the cases/s summary.

Budget: KFAB_FUZZ_EXAMPLES examples per property (default 40: seconds in CI), the same examples each run
(derandomized; KFAB_FUZZ_RANDOM=1 draws new ones). A longer run on demand:
    KFAB_FUZZ_EXAMPLES=2000 .venv/bin/python -m pytest -q tests/unit/test_fuzz_inputs.py tests/api/test_fuzz_api.py
Every suite prints `fuzz <name>: N cases in S s (R cases/s)` at the end of the session.
"""

from __future__ import annotations

import os
import string
import time
from contextlib import contextmanager

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("KFAB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("KFAB_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])

COUNTS: dict[str, list[float]] = {}  # suite -> [cases, seconds]


@contextmanager
def counted(name: str):
    """Count one case of a suite and the time it took."""
    started = time.perf_counter()
    try:
        yield
    finally:
        entry = COUNTS.setdefault(name, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - started


def summary() -> list[str]:
    return [f"fuzz {name}: {int(n)} cases in {s:.1f} s ({n / s if s else 0:.0f} cases/s)"
            for name, (n, s) in sorted(COUNTS.items())]


def print_summary(config) -> None:
    """Write the cases/s lines past pytest's output capture (they are the figures the suite reports)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextmanager(lambda: (yield))():
        reporter.write_line("")
        for line in summary():
            reporter.write_line(line)
    COUNTS.clear()


# Words Kubernetes objects use, so that generated objects reach past the first "unknown field" check.
WORDS = ["apiVersion", "kind", "metadata", "name", "namespace", "labels", "annotations", "spec", "status",
         "containers", "image", "ports", "containerPort", "replicas", "selector", "matchLabels", "template",
         "data", "stringData", "type", "volumes", "env", "value", "valueFrom", "securityContext", "privileged",
         "resources", "limits", "requests", "cpu", "memory", "uid", "resourceVersion", "finalizers",
         "ownerReferences", "clusterIP", "targetPort", "protocol", "nodeName", "hostNetwork", "generateName",
         "$patch", "$retainKeys", "$setElementOrder/containers", "$deleteFromPrimitiveList/finalizers"]
keys = st.one_of(st.sampled_from(WORDS), st.text(string.ascii_letters + "-./$_", min_size=0, max_size=12))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(["v1", "apps/v1", "ConfigMap", "Pod", "x", "", "0",
                                                           "100m", "1Gi", "Always", "TCP", "delete"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(keys, inner, max_size=5)),
                           max_leaves=25)
