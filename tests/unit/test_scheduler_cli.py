"""`kfab scheduler` refuses bad input with a message naming what is wrong, and exits non-zero."""

import subprocess
import sys


def kfab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kfab", *args], capture_output=True, text=True, timeout=30)


def test_missing_kubeconfig_is_named(tmp_path):
    result = kfab("scheduler", "--kubeconfig", str(tmp_path / "nope.kubeconfig"))
    assert result.returncode == 1
    assert "nope.kubeconfig" in result.stderr


def test_malformed_kubeconfig_is_named(tmp_path):
    bad = tmp_path / "bad.kubeconfig"
    bad.write_text("just a string\n")
    result = kfab("scheduler", "--kubeconfig", str(bad))
    assert result.returncode == 1
    assert "bad.kubeconfig" in result.stderr


def test_inconsistent_leader_election_timings(tmp_path):
    result = kfab("scheduler", "--kubeconfig", str(tmp_path / "k"), "--leader-elect",
                  "--leader-elect-lease-duration", "1")
    assert result.returncode == 2
    assert "lease duration > renew deadline > retry period" in result.stderr
