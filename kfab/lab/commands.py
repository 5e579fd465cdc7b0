"""`kfab lab up|down|status|ssh`: the local lab of Debian hosts as Podman containers."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEFAULT_INVENTORY = "inventory/lab.yml"


def _default_inventory() -> str:
    # From the repository root the relative path works; elsewhere fall back to the checkout's copy.
    if Path(DEFAULT_INVENTORY).exists():
        return DEFAULT_INVENTORY
    repo_copy = Path(__file__).resolve().parents[2] / DEFAULT_INVENTORY
    return str(repo_copy) if repo_copy.exists() else DEFAULT_INVENTORY


def add_commands(subparsers) -> None:
    lab = subparsers.add_parser("lab", help="the local lab: Debian hosts as privileged Podman containers")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="ACTION")
    lab.set_defaults(func=lambda args: (lab.print_help(sys.stderr), 2)[1])

    def with_inventory(p):
        p.add_argument("-i", "--inventory", default=None,
                       help=f"lab inventory (Ansible YAML; default {DEFAULT_INVENTORY})")
        return p

    up = with_inventory(lab_sub.add_parser("up", help="build the host image once, start the hosts, wait for SSH"))
    up.add_argument("--vms", type=int, metavar="N", default=0,
                    help="add N QEMU VM hosts (written with the inventory's hosts to INVENTORY-vms.yml)")
    up.add_argument("--replace", action="append", default=[], metavar="HOST",
                    help="create HOST afresh from the image (a blank disk); repeatable. Without it a stopped, "
                         "paused or partitioned host is brought back as it was")
    up.set_defaults(func=cmd_up)
    with_inventory(lab_sub.add_parser("down", help="remove the lab's containers, network and NAT rule")
                   ).set_defaults(func=cmd_down)
    with_inventory(lab_sub.add_parser("status", help="each host: running, IP, SSH answering")
                   ).set_defaults(func=cmd_status)
    faults = {
        "stop": "power HOST off, keeping its disk (systemd shuts down in order; --kill: a power cut)",
        "start": "boot a stopped HOST from its disk and wait for SSH",
        "restart": "stop then start HOST (--kill: power-cycle it)",
        "pause": "freeze HOST (every process stops where it is, as a hung machine)",
        "unpause": "thaw a paused HOST",
        "partition": "cut HOST's network link both ways (its pods' traffic too)",
        "heal": "restore HOST's link as it was before `partition`",
    }
    for action, what in faults.items():
        p = with_inventory(lab_sub.add_parser(action, help=what))
        p.add_argument("host", metavar="HOST")
        if action in ("stop", "restart"):
            p.add_argument("--kill", action="store_true", help="SIGKILL the host's init: no orderly shutdown")
        p.set_defaults(func=cmd_fault, action=action)
    ssh = with_inventory(lab_sub.add_parser("ssh", help="ssh to a lab host with the lab key"))
    ssh.add_argument("host")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER, help="command to run (default: a login shell)")
    ssh.set_defaults(func=cmd_ssh)


def _lab(args, inventory=None):
    from kfab.lab import Lab
    return Lab(inventory or args.inventory or _default_inventory(), log=lambda msg: print(msg, file=sys.stderr))


def _guard(fn):
    def wrapper(args) -> int:
        from kfab.lab import LabError
        try:
            return fn(args)
        except LabError as exc:
            print(f"kfab lab: error: {exc}", file=sys.stderr)
            return 1
    return wrapper


@_guard
def cmd_up(args) -> int:
    lab = _lab(args)
    if args.vms:
        from kfab.lab.vm_inventory import write_vms_inventory
        path = write_vms_inventory(lab.spec, args.vms)
        print(f"lab {lab.spec.network}: inventory with {args.vms} VM host(s): {path} "
              f"(use it for kfab up and kfab lab down|status|ssh)", file=sys.stderr)
        lab = _lab(args, path)
    t0 = time.monotonic()
    result = lab.up(replace=tuple(args.replace))
    took = time.monotonic() - t0
    if result.changed:
        started = ", ".join(result.started) or "none"
        restarted = f"; brought back: {', '.join(result.restarted)}" if result.restarted else ""
        print(f"lab {lab.spec.network}: up in {took:.1f} s (started: {started}{restarted}); "
              f"hosts: {', '.join(f'{n}={ip}' for n, ip in lab.hosts.items())}")
    else:
        print(f"lab {lab.spec.network}: already up ({len(lab.hosts)} hosts answer SSH)")
    return 0


@_guard
def cmd_down(args) -> int:
    lab = _lab(args)
    removed = lab.down()
    print(f"lab {lab.spec.network}: " + ("removed " + ", ".join(removed) if removed else "nothing to remove"))
    return 0


@_guard
def cmd_status(args) -> int:
    lab = _lab(args)
    rows = lab.status()
    width = max([4] + [len(r.name) for r in rows])
    print(f"{'HOST':<{width}}  {'KIND':<9}  {'RUNNING':<7}  {'IP':<15}  {'STATE':<11}  SSH")
    for r in rows:
        print(f"{r.name:<{width}}  {r.kind:<9}  {'yes' if r.running else 'no':<7}  {r.ip:<15}  {r.state:<11}  "
              f"{r.ssh}")
    return 0 if all(r.ready for r in rows) else 3


FAULT_DONE = {"stop": ("stopped (disk kept)", "was stopped already"), "start": ("started", "was running already"),
              "pause": ("paused", "was paused already"), "unpause": ("unpaused", "was not paused"),
              "partition": ("cut off the network", "was cut off already"),
              "heal": ("network restored", "was not cut off")}


@_guard
def cmd_fault(args) -> int:
    lab = _lab(args)
    if args.action == "restart":
        lab.restart(args.host, kill=args.kill)
        print(f"lab {lab.spec.network}: {args.host} restarted with its disk; SSH answers")
        return 0
    act = getattr(lab, args.action)
    changed = act(args.host, kill=args.kill) if args.action == "stop" else act(args.host)
    done, unchanged = FAULT_DONE[args.action]
    print(f"lab {lab.spec.network}: {args.host} {done if changed else unchanged}")
    return 0


@_guard
def cmd_ssh(args) -> int:
    lab = _lab(args)
    cmd = lab.ssh_command(args.host, batch=False)
    if not args.cmd and sys.stdin.isatty():
        cmd.insert(1, "-t")
    sys.stdout.flush()
    os.execvp(cmd[0], cmd + args.cmd)
