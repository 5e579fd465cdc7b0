"""A run's results per host and task, kept for `kfab plan --json` (hosts -> tasks -> status, changed,
diff, duration): what a script or CI job reads instead of the human output."""

from __future__ import annotations

import threading

from kfab.provision.output import unified_diff


class Report:
    def __init__(self):
        self.hosts: dict[str, list[dict]] = {}
        self.plays: list[tuple[str, float]] = []    # (play name, wall-clock seconds), in run order
        self.connects: dict[str, float] = {}       # host -> seconds to connect and gather its facts
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

    def play(self, name: str, seconds: float) -> None:
        self.plays.append((name, seconds))

    def connected(self, host: str, seconds: float) -> None:
        with self.lock:
            self.connects[host] = seconds

    def profile(self, most: int = 15, before_plays: float = 0.0) -> str:
        """Where a run's time went: each play's wall clock (plays run one after another, hosts in parallel
        within one), each role's time on its slowest host (what the play waited for) and summed over hosts,
        and the slowest tasks summed over hosts and loop runs, as Ansible's profile_tasks callback lists them.
        `before_plays`: seconds the run spent before its first play (kfab doctor's fatal checks)."""
        roles: dict[str, dict[str, float]] = {}   # role -> host -> seconds
        totals: dict[str, list] = {}
        for host, tasks in self.hosts.items():
            for entry in tasks:
                role = entry["task"].split(" : ", 1)[0] if " : " in entry["task"] else "(play tasks)"
                per_host = roles.setdefault(role, {})
                per_host[host] = per_host.get(host, 0.0) + entry["duration"]
                total = totals.setdefault(entry["task"], [0.0, 0])
                total[0] += entry["duration"]
                total[1] += 1
        if self.connects:
            roles["(connect, facts)"] = dict(self.connects)
        lines = ["PROFILE (seconds)"]
        plays = ([("(preflight: kfab doctor's fatal checks)", before_plays)] if before_plays else []) + self.plays
        if plays:
            width = max(len(name) for name, _ in plays)
            lines.append("plays, wall clock:")
            lines += [f"  {name:<{width}}  {seconds:8.2f}" for name, seconds in plays]
            lines.append(f"  {'total':<{width}}  {sum(s for _, s in plays):8.2f}")
        if roles:
            rows = sorted(roles.items(), key=lambda kv: -max(kv[1].values()))
            width = max(len(name) for name, _ in rows)
            lines.append("roles: slowest host, summed over hosts:")
            for name, per_host in rows:
                slowest = max(per_host, key=per_host.get)
                lines.append(f"  {name:<{width}}  {per_host[slowest]:8.2f} ({slowest})  {sum(per_host.values()):8.2f}")
        rows = sorted(totals.items(), key=lambda kv: -kv[1][0])[:most]
        if rows:
            width = max(len(name) for name, _ in rows)
            lines.append("tasks, summed over hosts:")
            lines += [f"  {name:<{width}}  {seconds:8.2f}  ({hosts} run{'s' if hosts > 1 else ''})"
                      for name, (seconds, hosts) in rows]
        return "\n".join(lines)

    def as_dict(self, stats: dict) -> dict:
        return {"changed": any(s.changed for s in stats.values()),
                "hosts": {host: {"stats": vars(s), "tasks": self.hosts.get(host, [])}
                          for host, s in stats.items()}}
