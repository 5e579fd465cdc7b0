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
            # hostplay hands over outcomes already masked (MaskedDiff.text); a bare Diff is printed as it is
            entry["diff"] = [{"path": d.path,
                              "diff": getattr(d, "text", None) or unified_diff(d.path, d.before, d.after)}
                             for d in outcome.diffs]
        with self.lock:
            self.hosts.setdefault(host, []).append(entry)

    def profile(self, most: int = 15) -> str:
        """The slowest tasks (summed over hosts and loop runs), as Ansible's profile_tasks callback lists them."""
        totals: dict[str, list] = {}
        for tasks in self.hosts.values():
            for entry in tasks:
                total = totals.setdefault(entry["task"], [0.0, 0])
                total[0] += entry["duration"]
                total[1] += 1
        rows = sorted(totals.items(), key=lambda kv: -kv[1][0])[:most]
        width = max([len(name) for name, _ in rows] + [4])
        return "PROFILE (seconds, summed over hosts)\n" + "\n".join(
            f"{name:<{width}}  {seconds:8.2f}  ({hosts} run{'s' if hosts > 1 else ''})"
            for name, (seconds, hosts) in rows)

    def as_dict(self, stats: dict) -> dict:
        return {"changed": any(s.changed for s in stats.values()),
                "hosts": {host: {"stats": vars(s), "tasks": self.hosts.get(host, [])}
                          for host, s in stats.items()}}
