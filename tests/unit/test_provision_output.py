"""What a run prints: plain lines without a TTY, live progress (play, per host tasks done, task, time) on one,
and the recap."""

from __future__ import annotations

import io
import re

from kfab.provision.modules.base import Diff
from kfab.provision.output import HostStats, Output, unified_diff


def test_plain_output_has_one_line_per_result_and_a_recap():
    out = io.StringIO()
    o = Output(out, tty=False)
    o.task_start("kt1", "common : Install")       # no live line without a TTY
    o.result("kt1", "common : Install", "ok")
    o.result("kt2", "common : Install", "failed", "exit code 1")
    o.recap({"kt1": HostStats(ok=1), "kt2": HostStats(failed=1)})
    text = out.getvalue()
    assert "\033" not in text and "\r" not in text
    assert "      ok kt1: common : Install\n" in text and "  failed kt2: common : Install: exit code 1" in text
    rows = text.split("RECAP\n")[1].splitlines()
    assert rows[0].split() == ["HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SKIPPED", "RESCUED", "IGNORED"]
    assert rows[2].split() == ["kt2", "0", "0", "1", "0", "0", "0", "0"]


def test_tty_output_shows_each_hosts_task_count_and_current_task_live():
    out = io.StringIO()
    o = Output(out, tty=True, play_tasks=[3, 5])
    o.play("Basics", ["kt1", "kt2"])
    o.task_start("kt1", "connecting")                 # not a task: not counted
    o.task_start("kt1", "common : Install")
    o.task_start("kt2", "common : Configure")
    o.live.progress.refresh()
    screen = out.getvalue()
    assert "PLAY 1/2 Basics" in screen and "0/2" in screen        # hosts done of the play
    assert "kt1" in screen and "1/3" in screen and "common : Install" in screen and "common : Configure" in screen
    o.result("kt1", "common : Install", "ok")        # quiet on a TTY: the live part shows progress
    o.result("kt2", "common : Configure", "changed")
    assert "changed" in out.getvalue()
    o.host_done("kt1")
    o.host_done("kt2")
    o.live.progress.refresh()
    assert "done kt2: 1 task, 1 changed in " in out.getvalue() and "2/2" in out.getvalue()
    o.recap({"kt1": HostStats(ok=1), "kt2": HostStats(changed=1)})
    assert not o.live.started and "RECAP" in out.getvalue()


def test_plain_output_says_which_play_of_how_many_and_each_hosts_tasks_and_time():
    out = io.StringIO()
    o = Output(out, tty=False, play_tasks=[4, 2])
    o.play("Basics", ["kt1"])
    o.task_start("kt1", "gathering facts")
    for label in ("a", "b"):
        o.task_start("kt1", label)
        o.result("kt1", label, "changed" if label == "b" else "ok")
    o.host_done("kt1")
    lines = out.getvalue().splitlines()
    assert lines[0] == "PLAY [Basics] on kt1 (play 1 of 2)"
    assert re.fullmatch(r"    done kt1: 2 tasks, 1 changed in \d+\.\d s", lines[-1]), lines[-1]
    assert "\033" not in out.getvalue()


def test_diff_is_unified():
    assert unified_diff("/etc/a", "x\ny\n", "x\nz\n").splitlines() == [
        "--- before: /etc/a", "+++ after: /etc/a", "@@ -1,2 +1,2 @@", " x", "-y", "+z"]
    out = io.StringIO()
    Output(out, tty=False).result("kt1", "t", "changed", diffs=[Diff("/etc/a", "", "new\n")])
    assert "+new" in out.getvalue()
