"""One provisioning run as `kfab up` and `kfab plan` do it: load inventory, plays and extra vars (decrypting
vault data), preflight every host, run, and turn the outcome into the exit code."""

from __future__ import annotations

import getpass
import json
import logging
import sys
import time

from kfab.provision.context import RunVars
from kfab.provision.doctor import NOT_GATING, examine, render
from kfab.provision.errors import ProvisionError
from kfab.provision.inputs import load_inputs
from kfab.provision.labcheck import lab_not_up
from kfab.provision.output import Output
from kfab.provision.preflight import preflight
from kfab.provision.progress import tasks_of
from kfab.provision.runlog import open_run_log
from kfab.provision.runner import Options, Runner

EXIT_INVALID = 1   # the inputs are invalid: nothing ran on any host
# kfab up: 2: some host failed; 4: some host was unreachable (as ansible-playbook)
# kfab plan (as `terraform plan -detailed-exitcode`): 0 nothing would change, 2 changes pending,
# 1 the plan could not be made (invalid inputs, or a task failed on some host), 4 a host was unreachable.
PLAN_CHANGES = 2
PLAN_FAILED = 1


def provision(inventory_path: str, playbook: str, extra_vars: list[str], *, limit: str | None = None,
              tags: str = "", check: bool = False, diff: bool = False, verbose: int = 0, forks: int = 10,
              fail_fast: bool = False, plan: bool = False, as_json: bool = False, ask_become_pass: bool = False,
              vault_password_files: list[str] = (), profile: bool = False,
              skip_doctor: bool = False) -> int:
    # paramiko logs a traceback for every failed connection attempt; the unreachable line says it in one.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())
    logging.getLogger("paramiko").propagate = False
    try:
        inputs = load_inputs(inventory_path, playbook, extra_vars, vault_password_files)
    except ProvisionError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_INVALID
    inventory, plays, extra = inputs.inventory, inputs.plays, inputs.extra_vars
    hosts = inventory.select(limit) if limit else list(inventory.hosts)
    if not hosts:
        print(f"ERROR: --limit {limit!r} matches no host of {inventory_path}", file=sys.stderr)
        return EXIT_INVALID
    errors = preflight(inventory, plays, extra, hosts)
    run_vars = RunVars(inventory, extra)
    errors += lab_not_up(inventory, {h: run_vars.host_vars(h) for h in hosts})
    if errors:
        for exc in errors:
            print(f"ERROR: {exc}", file=sys.stderr)
        print(f"ERROR: nothing was run: fix the {'error' if len(errors) == 1 else f'{len(errors)} errors'} "
              f"above first", file=sys.stderr)
        return EXIT_INVALID
    become_password = getpass.getpass("BECOME password: ") if ask_become_pass else None
    doctor_started = time.monotonic()
    if not check and not skip_doctor:
        # kfab doctor's fatal findings stop the run before any host changes (unreachable hosts and sudo are
        # left to the run itself, which reports them per host).
        exam = examine(inventory, plays, extra, hosts, become_password, forks, include_local=False)
        fatal = [f for f in exam.fatal if f.check not in NOT_GATING]
        if fatal:
            exam.findings = fatal
            print(render(exam), file=sys.stderr)
            print(f"ERROR: nothing was changed: fix the fatal finding{'s' if len(fatal) > 1 else ''} above first "
                  f"(kfab doctor -i {inventory_path} shows every finding)", file=sys.stderr)
            return EXIT_INVALID
    doctor_seconds = time.monotonic() - doctor_started
    options = Options(check=check, diff=diff, verbose=verbose, forks=forks, fail_fast=fail_fast, limit=limit,
                      tags=tuple(t.strip() for t in tags.split(",") if t.strip()), become_password=become_password)
    log = open_run_log("plan" if check else "up", inventory_path, playbook)
    output = Output(stream=sys.stderr if as_json else None, verbose=verbose, play_tasks=[tasks_of(p) for p in plays],
                    log=log)
    output.masker.learn(inputs.secrets | ({become_password} if become_password else set()))
    runner = Runner(inventory, plays, extra, options, output)
    try:
        code = runner.run()
    finally:
        output.close()
    if profile:
        output.note(runner.report.profile(before_plays=doctor_seconds))
    if log is not None:
        log.close()
    if as_json:
        print(json.dumps(runner.report.as_dict(runner.stats), indent=2, default=str))
    if not plan or code == 4:
        return code
    if code != 0:
        return PLAN_FAILED
    return PLAN_CHANGES if any(s.changed for s in runner.stats.values()) else 0
