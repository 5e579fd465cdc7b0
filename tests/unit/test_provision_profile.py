"""`kfab up --profile`: after the recap, where the run's time went — each play's wall clock, each role's time on
its slowest host and over all hosts, connecting and fact gathering, and the slowest tasks (as Ansible's
profile_tasks callback)."""

from __future__ import annotations

import re

from tests.unit.test_provision_semantics import project, run

TWO_PLAYS = """\
- name: First play
  hosts: all
  roles: [r]
- name: Second play
  hosts: h2
  tasks:
    - name: a play's own task
      command: "true"
"""


def test_profile_names_each_play_role_and_task_with_its_time(tmp_path):
    project(tmp_path, """\
        - name: wait a moment
          command: sleep 0.3
        - name: quick one
          command: "true"
        """, site=TWO_PLAYS, hosts=("h1", "h2"))
    runner, code, _ = run(tmp_path)
    assert code == 0
    profile = runner.report.profile()
    plays = dict(re.findall(r"^  (First play|Second play|total) +([\d.]+)$", profile, re.M))
    assert set(plays) == {"First play", "Second play", "total"}
    assert float(plays["First play"]) >= 0.3     # the play waited for its hosts' sleep
    assert float(plays["total"]) >= float(plays["First play"]) + float(plays["Second play"]) - 0.011
    role = re.search(r"^  r +([\d.]+) \((h1|h2)\) +([\d.]+)$", profile, re.M)
    assert role, profile
    assert float(role.group(1)) >= 0.3 and float(role.group(3)) >= 0.6   # slowest host; both hosts
    assert re.search(r"^  \(play tasks\) +[\d.]+ \(h2\)", profile, re.M), profile
    assert re.search(r"^  \(connect, facts\) +[\d.]+ \(h[12]\)", profile, re.M), profile
    tasks = profile.split("tasks, summed over hosts:\n", 1)[1].splitlines()
    assert tasks[0].split()[:4] == ["r", ":", "wait", "a"] and tasks[0].endswith("(2 runs)"), profile
    with_doctor = runner.report.profile(before_plays=1.5)
    assert re.search(r"^  \(preflight: kfab doctor's fatal checks\) +1\.50$", with_doctor, re.M), with_doctor
    total = float(re.search(r"^  total +([\d.]+)$", with_doctor, re.M).group(1))
    assert abs(total - 1.5 - float(plays["total"])) < 0.011
