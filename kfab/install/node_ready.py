"""Wait until a Node reports Ready, asking the API with the node's own kubeconfig (role worker's last step).

    python -m kfab.install.node_ready --kubeconfig /etc/kfab/node.kubeconfig --node NAME [--timeout 120]

Runs on the worker from kfab's venv, so the play moves on only once the agent registered, got its podCIDR
and posted Ready — and proves the node's credentials reach the API. Exit 0 when Ready, 1 on timeout
(printing the last condition seen).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time


def ready_condition(node: dict) -> dict | None:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return None


async def wait_ready(kubeconfig: str, name: str, timeout: float) -> tuple[bool, str]:
    from kfab.client import Client, rt_of
    node_rt = rt_of("Node")
    last = "no Node object yet"
    deadline = time.monotonic() + timeout
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-node-ready") as client:
        while True:
            try:
                node = await client.get(node_rt, None, name)
                condition = ready_condition(node)
                if condition and condition.get("status") == "True" and (node.get("spec") or {}).get("podCIDR"):
                    return True, f"Node {name} Ready, podCIDR {node['spec']['podCIDR']}"
                last = f"Ready={condition.get('status')} ({condition.get('message', '')})" if condition \
                    else "no Ready condition yet"
            except Exception as e:  # noqa: BLE001 - the agent or API may still be starting: keep asking
                last = str(e)
            if time.monotonic() > deadline:
                return False, f"Node {name} not Ready after {timeout:.0f}s: {last}"
            await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kfab.install.node_ready")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--node", required=True)
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args(argv)
    ok, message = asyncio.run(wait_ready(args.kubeconfig, args.node, args.timeout))
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
