"""What a run prints: plain lines without a TTY, a live "host: task" line on one, and the recap."""

from __future__ import annotations

import io

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


def test_tty_output_shows_which_host_is_on_which_task():
    out = io.StringIO()
    o = Output(out, tty=True)
    o.task_start("kt1", "common : Install")
    o.task_start("kt2", "common : Configure")
    assert out.getvalue().endswith("kt1: common : Install | kt2: common : Configure")
    o.result("kt1", "common : Install", "ok")        # quiet on a TTY: the live line shows progress
    o.result("kt2", "common : Configure", "changed")
    assert "changed" in out.getvalue() and "\r\033[K" in out.getvalue()
    o.host_done("kt1")
    o.host_done("kt2")
    assert out.getvalue().endswith("\r\033[K")


def test_diff_is_unified():
    assert unified_diff("/etc/a", "x\ny\n", "x\nz\n").splitlines() == [
        "--- before: /etc/a", "+++ after: /etc/a", "@@ -1,2 +1,2 @@", " x", "-y", "+z"]
    out = io.StringIO()
    Output(out, tty=False).result("kt1", "t", "changed", diffs=[Diff("/etc/a", "", "new\n")])
    assert "+new" in out.getvalue()
