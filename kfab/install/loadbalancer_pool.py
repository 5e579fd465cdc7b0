"""Put the inventory's `loadbalancer_pool` where the service-lb controller reads it: `pool` of the ConfigMap
kube-system/kfab-loadbalancer (an empty pool removes it: LoadBalancer Services go back to node addresses).

    python -m kfab.install.loadbalancer_pool --kubeconfig FILE --pool '192.168.1.240-192.168.1.250'

Run by role control-plane on its first host. Prints `changed` or `ok`. The controller reads the pool (and
reports one that does not parse as an InvalidPool event on the ConfigMap, in kube-system's events).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from kfab.client import APIStatusError, Client, rt_of

CONFIGMAP = rt_of("ConfigMap")
# Where kfab.controllers.service_lb reads it (install helpers import only the client).
CONFIG_NAMESPACE, CONFIG_NAME = "kube-system", "kfab-loadbalancer"


async def put_pool(kubeconfig: str, pool: str) -> bool:
    """True when the ConfigMap changed."""
    async with Client.from_kubeconfig(kubeconfig, user_agent="kfab-install") as client:
        try:
            current = await client.get(CONFIGMAP, CONFIG_NAMESPACE, CONFIG_NAME)
        except APIStatusError as e:
            if not e.not_found:
                raise
            current = None
        if not pool:
            if current is None:
                return False
            await client.delete(CONFIGMAP, CONFIG_NAMESPACE, CONFIG_NAME)
            return True
        if current is None:
            await client.create(CONFIGMAP, {"metadata": {"name": CONFIG_NAME, "namespace": CONFIG_NAMESPACE},
                                            "data": {"pool": pool}}, CONFIG_NAMESPACE)
            return True
        if (current.get("data") or {}).get("pool") == pool:
            return False
        current["data"] = dict(current.get("data") or {}, pool=pool)
        await client.update(CONFIGMAP, current)
        return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kfab.install.loadbalancer_pool")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--pool", default="", help="range a.b.c.d-a.b.c.e, CIDR, or a comma-separated list; '' = none")
    args = p.parse_args(argv)
    print("changed" if asyncio.run(put_pool(args.kubeconfig, args.pool.strip())) else "ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
