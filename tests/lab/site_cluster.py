"""The whole site on the 10.91 lab: `kfab up -i tests/lab/inventory/up.yml` once, from bare hosts.

u1 = control plane + etcd + registry, u2/u3 = workers (node agent, service proxy, cluster DNS). Used by the
session fixture `site` (tests/lab/conftest.py) for the tests of issue 6 (test_up_site.py, test_up_demo.py).
The lab goes down first (fresh hosts whatever a killed session left) and down at the end unless KFAB_LAB_KEEP=1.
KFAB_SITE_REUSE=1 (while writing tests, after a run with KFAB_LAB_KEEP=1): keep the running hosts and run
`kfab up` over them (a rerun) instead of starting from bare hosts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KFAB = [sys.executable, "-m", "kfab"]
INVENTORY = REPO / "tests" / "lab" / "inventory" / "up.yml"
# role pki's default: the CA and the admin kubeconfig live here, per lab network (kfab_lab_network)
CLUSTER_DIR = Path("~/.local/share/kfab/clusters/kfabup").expanduser()


def recap(output: str) -> dict[str, dict[str, int]]:
    """The RECAP table of a run: host -> {ok, changed, failed, unreachable, skipped}."""
    rows = output.split("\nRECAP\n", 1)[1].splitlines()
    columns = [c.lower() for c in rows[0].split()[1:]]
    return {cells[0]: dict(zip(columns, map(int, cells[1:]))) for cells in (r.split() for r in rows[1:] if r.strip())}


class Site:
    """A lab with the whole cluster installed by `kfab up`; kubectl with the admin kubeconfig it wrote."""

    def __init__(self, inventory: Path = INVENTORY):
        from kfab.lab import Lab
        from tests.lab.conftest import LabHosts
        self.inventory = inventory
        self.lab = LabHosts(Lab(inventory))
        self.kubeconfig = CLUSTER_DIR / "admin.kubeconfig"
        self.up_output = ""        # stdout of the first `kfab up`
        self.up_seconds = 0.0      # how long it took (reported, never asserted)
        self._wheelhouse: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> "Site":
        if os.environ.get("KFAB_SITE_REUSE") != "1":
            self.lab.lab.down()
        self.lab.lab.up()
        try:
            started = time.monotonic()
            proc = self.kfab("up", "-i", str(self.inventory), timeout=2100)   # bare hosts, busy machine
            self.up_seconds = time.monotonic() - started
            if proc.returncode != 0:
                raise AssertionError(f"kfab up failed:\n{proc.stdout}{proc.stderr}")
            self.up_output = proc.stdout
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if os.environ.get("KFAB_LAB_KEEP") != "1":
            self.lab.lab.down()

    # --- commands ----------------------------------------------------------------------------------

    def kfab(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        """`python -m kfab ARGS`; `up`/`plan` get one wheelhouse for the whole session (others edit the shared
        tree meanwhile, and a rebuilt kfab would rightly count as a change on the hosts)."""
        if args and args[0] in ("up", "plan"):
            if self._wheelhouse is None:
                from kfab.install.wheelhouse import build
                self._wheelhouse = str(build())
            args = (*args, "-e", f"kfab_wheelhouse={self._wheelhouse}")
        return subprocess.run(KFAB + list(args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, cwd=REPO)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
                ) -> subprocess.CompletedProcess:
        binary = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
        proc = subprocess.run([binary, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        return proc

    def plan_after_hand_edit(self, host: str, path: str) -> dict[str, int]:
        """Append a line to `path` on `host`, `kfab plan` the site, then `kfab up --limit host` to undo it.

        Checks the plan showed the line's removal in `path`'s diff and changed nothing itself, and that the
        up put the file back; returns the plan's changed count per host."""
        self.ssh(host, f"echo '# edited by hand' >> {path}")
        try:
            proc = self.kfab("plan", "-i", str(self.inventory))
            assert proc.returncode == 2, proc.stdout + proc.stderr    # 2: changes pending
            assert "-# edited by hand" in proc.stdout and path in proc.stdout, proc.stdout
            assert "# edited by hand" in self.ssh(host, f"cat {path}").stdout   # plan changed nothing
            changed = {h: row["changed"] for h, row in recap(proc.stdout).items()}
        finally:
            proc = self.kfab("up", "-i", str(self.inventory), "--limit", host)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "# edited by hand" not in self.ssh(host, f"cat {path}").stdout
        return changed

    def ssh(self, host: str, cmd: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.lab.ssh(host, cmd, check=check, timeout=timeout)
