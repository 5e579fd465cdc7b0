"""A run's results per host and task, kept for `kfab plan --json` (hosts -> tasks -> status, changed,
diff, duration): what a script or CI job reads instead of the human output."""

from __future__ import annotations

import threading

from kfab.provision.output import unified_diff


class Report:
    def __init__(self):
        self.hosts: dict[str, list[dict]] = {}
        self.lock = threading.Lock()

    def task(self, host: str, task: str, status: str, outcome, duration: float) -> None:
        entry = {"task": task, "status": status, "changed": status == "changed",
                 "duration": round(duration, 3)}
        if outcome.message:
            entry["message"] = outcome.message
        if outcome.diffs:
            entry["diff"] = [{"path": d.path, "diff": unified_diff(d.path, d.before, d.after)} for d in outcome.diffs]
        with self.lock:
            self.hosts.setdefault(host, []).append(entry)

    def as_dict(self, stats: dict) -> dict:
        return {"changed": any(s.changed for s in stats.values()),
                "hosts": {host: {"stats": vars(s), "tasks": self.hosts.get(host, [])}
                          for host, s in stats.items()}}
