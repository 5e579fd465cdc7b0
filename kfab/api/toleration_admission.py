"""DefaultTolerationSeconds (kube-apiserver's admission plugin of that name): a new Pod that does not tolerate the
node.kubernetes.io/not-ready or node.kubernetes.io/unreachable NoExecute taint gets a toleration of it for
`--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`.

Those seconds are how long a pod stays bound to a node that reports NotReady, or stopped reporting at all, before
the node lifecycle controller evicts it so its controller replaces it elsewhere. Upstream's 300 s each (plus a
50 s node-monitor grace period) keep a dead worker's pods down for ~5 min 50 s; `kfab up` installs shorter
values (role control-plane's defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UPSTREAM_SECONDS = 300


@dataclass(frozen=True)
class DefaultTolerationSeconds:
    not_ready: int = UPSTREAM_SECONDS
    unreachable: int = UPSTREAM_SECONDS

    def __post_init__(self) -> None:
        for flag, value in (("--default-not-ready-toleration-seconds", self.not_ready),
                            ("--default-unreachable-toleration-seconds", self.unreachable)):
            if value < 0:
                raise ValueError(f"{flag} must be 0 or more, not {value}")

    def admit(self, pod: dict) -> None:
        """Add the missing tolerations to a Pod being created (as upstream: never on update)."""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return
        tolerations = spec.get("tolerations")
        if tolerations is None:
            tolerations = []
        if not isinstance(tolerations, list):
            return  # validation reports it
        added = [{"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                 for key, seconds in ((NOT_READY, self.not_ready), (UNREACHABLE, self.unreachable))
                 if not any(_tolerates_key(t, key) for t in tolerations)]
        if added:
            spec["tolerations"] = tolerations + added


def _tolerates_key(toleration: object, key: str) -> bool:
    """Upstream's test: the toleration names this key (or no key at all) for NoExecute (or every effect)."""
    if not isinstance(toleration, dict):
        return False
    return toleration.get("key") in (key, "", None) and toleration.get("effect") in ("NoExecute", "", None)
