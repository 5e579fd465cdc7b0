"""Deployment rollout strategies (kubernetes/pkg/controller/deployment: rolling.go, recreate.go, sync.go).

RollingUpdate: grow the new ReplicaSet while all pods stay within replicas + maxSurge; shrink old ones while
available pods stay at least replicas - maxUnavailable (unhealthy old pods go first). Recreate: old
ReplicaSets to 0, wait until their pods are gone, then the new one to full size. Each call takes one step.
A paused Deployment, or one whose replicas changed, only gets scaled (proportionally across ReplicaSets in
the middle of a rollout) and cleaned up.
"""

from __future__ import annotations

import copy

from kfab.client import APIStatusError
from kfab.controllers import deployment_util as du
from kfab.controllers.podutil import is_active
from kfab.controllers.replicaset import REPLICASET
from kfab.objects.meta import status_of


class RolloutMixin:
    """Methods of DeploymentController (see deployment.py for get_all, status and writes)."""

    # --- one ReplicaSet's size -------------------------------------------------------------------------

    async def scale_rs(self, d: dict, rs: dict, size: int) -> bool:
        """Set spec.replicas and the desired/max replica annotations; True when something was written."""
        old_size = du.replicas_of(rs)
        rs = copy.deepcopy(rs)
        annotations = dict(rs["metadata"].get("annotations") or {})
        want = {du.DESIRED_REPLICAS: str(d["spec"].get("replicas", 1)),
                du.MAX_REPLICAS: str(int(d["spec"].get("replicas", 1)) + du.max_surge(d))}
        if old_size == size and all(annotations.get(k) == v for k, v in want.items()):
            return False
        rs["metadata"]["annotations"] = dict(annotations, **want)
        rs["spec"]["replicas"] = size
        await self.write_rs(rs)
        if old_size != size:
            direction = "up" if size > old_size else "down"
            self.event(d, "Normal", "ScalingReplicaSet",
                       f"Scaled {direction} replica set {rs['metadata']['name']} from {old_size} to {size}")
        return True

    # --- RollingUpdate ----------------------------------------------------------------------------------

    async def rollout_rolling(self, d: dict, rs_list: list[dict]) -> float | None:
        new_rs, old = await self.get_all(d, rs_list, create=True)
        rs_list = self.replicasets_of(d)
        new_rs = next((rs for rs in rs_list if new_rs and rs["metadata"]["uid"] == new_rs["metadata"]["uid"]), None)
        old = [rs for rs in rs_list if rs is not new_rs]
        if new_rs is not None:
            replicas = int(d["spec"].get("replicas", 1))
            if du.replicas_of(new_rs) > replicas:
                if await self.scale_rs(d, new_rs, replicas):
                    return await self.sync_rollout_status(d, self.replicasets_of(d), new_rs)
            else:
                wanted = du.new_rs_replicas(d, rs_list, new_rs)
                if wanted != du.replicas_of(new_rs) and await self.scale_rs(d, new_rs, wanted):
                    rs_now = self.replicasets_of(d)
                    return await self.sync_rollout_status(d, rs_now, self.find_new(d, rs_now))
        if await self.reconcile_old(d, rs_list, [rs for rs in old if du.replicas_of(rs) > 0], new_rs):
            return await self.sync_rollout_status(d, self.replicasets_of(d), new_rs)
        status = self.calculate_status(d, rs_list, new_rs)
        if du.is_complete(d, status):
            await self.cleanup(d, old)
        return await self.sync_rollout_status(d, self.replicasets_of(d), new_rs)

    async def reconcile_old(self, d: dict, all_rs: list[dict], old_active: list[dict], new_rs: dict | None) -> bool:
        if sum(du.replicas_of(rs) for rs in old_active) == 0:
            return False
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        replicas = int(d["spec"].get("replicas", 1))
        min_available = replicas - du.max_unavailable(d)
        all_pods = sum(du.replicas_of(rs) for rs in all_rs)
        new_unavailable = du.replicas_of(new_rs) - self.available_of(new_rs, min_ready)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        scaled = 0
        # First the old ReplicaSets' unhealthy pods: removing them costs no availability.
        for rs in sorted(old_active, key=lambda r: r["metadata"].get("creationTimestamp") or ""):
            if scaled >= max_scaled_down:
                break
            unhealthy = du.replicas_of(rs) - self.available_of(rs, min_ready)
            if unhealthy <= 0:
                continue
            cut = min(unhealthy, max_scaled_down - scaled)
            await self.scale_rs(d, rs, du.replicas_of(rs) - cut)
            scaled += cut
        if scaled:
            return True
        # Then available old pods, never below min_available in total (new and old ReplicaSets together).
        available = sum(self.available_of(rs, min_ready) for rs in all_rs)
        budget = available - min_available
        if budget <= 0:
            return False
        for rs in sorted(old_active, key=lambda r: r["metadata"].get("creationTimestamp") or ""):
            if scaled >= budget:
                break
            cut = min(du.replicas_of(rs), budget - scaled)
            if cut <= 0:
                continue
            await self.scale_rs(d, rs, du.replicas_of(rs) - cut)
            scaled += cut
        return scaled > 0

    # --- Recreate -----------------------------------------------------------------------------------------

    async def rollout_recreate(self, d: dict, rs_list: list[dict]) -> float | None:
        new_rs, old = await self.get_all(d, rs_list, create=False)
        scaled = False
        for rs in old:
            if du.replicas_of(rs) > 0:
                scaled |= await self.scale_rs(d, rs, 0)
        if scaled:
            return await self.sync_rollout_status(d, self.replicasets_of(d), new_rs)
        if any(status_of(p).get("phase") not in ("Succeeded", "Failed")
               for rs in old for p in self.pods_of(rs)):
            return await self.sync_rollout_status(d, self.replicasets_of(d), new_rs)  # old pods still stopping
        if new_rs is None:
            new_rs, old = await self.get_all(d, self.replicasets_of(d), create=True)
        if new_rs is not None:
            await self.scale_rs(d, new_rs, int(d["spec"].get("replicas", 1)))
        rs_list = self.replicasets_of(d)
        new_rs = self.find_new(d, rs_list)
        if du.is_complete(d, self.calculate_status(d, rs_list, new_rs)):
            await self.cleanup(d, [rs for rs in rs_list if rs is not new_rs])
        return await self.sync_rollout_status(d, rs_list, new_rs)

    # --- scaling (paused, or replicas changed) ----------------------------------------------------------

    async def sync(self, d: dict, rs_list: list[dict]) -> float | None:
        new_rs, old = await self.get_all(d, rs_list, create=False)
        await self.scale(d, new_rs, old)
        rs_list = self.replicasets_of(d)
        new_rs, old = self.new_and_old(d, rs_list)
        if d["spec"].get("paused"):
            await self.cleanup(d, old)
        status = self.calculate_status(d, rs_list, new_rs)
        if status != status_of(d):
            await self.write_status(d, status)
        return None

    async def scale(self, d: dict, new_rs: dict | None, old: list[dict]) -> None:
        replicas = int(d["spec"].get("replicas", 1))
        active = [rs for rs in ([new_rs] if new_rs else []) + old if du.replicas_of(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new_rs or (max(old, key=lambda r: r["metadata"].get(
                "creationTimestamp") or "") if old else None))
            if target is not None:
                await self.scale_rs(d, target, replicas)
            return
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        saturated = (new_rs is not None and du.replicas_of(new_rs) == replicas
                     and (new_rs["metadata"].get("annotations") or {}).get(du.DESIRED_REPLICAS) == str(replicas)
                     and self.available_of(new_rs, min_ready) == replicas)
        if saturated:
            for rs in old:
                if du.replicas_of(rs) > 0:
                    await self.scale_rs(d, rs, 0)
            return
        if not du.is_rolling(d):
            return
        allowed = replicas + du.max_surge(d) if replicas > 0 else 0
        to_add = allowed - sum(du.replicas_of(rs) for rs in active)
        # Growing: bigger (then newer) ReplicaSets first; shrinking: bigger (then older) first.
        order = sorted(active, key=lambda r: r["metadata"].get("creationTimestamp") or "", reverse=to_add > 0)
        order = sorted(order, key=du.replicas_of, reverse=True)
        status_replicas = int(status_of(d).get("replicas", 0))
        sizes, added = {}, 0
        for rs in order:
            share = du.proportion(rs, d, to_add, added, status_replicas) if to_add else 0
            sizes[rs["metadata"]["name"]] = du.replicas_of(rs) + share
            added += share
        for i, rs in enumerate(order):
            size = sizes[rs["metadata"]["name"]]
            if i == 0 and to_add:
                size = max(0, size + to_add - added)
            await self.scale_rs(d, rs, size)

    # --- revision history ---------------------------------------------------------------------------------

    async def cleanup(self, d: dict, old: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return
        alive = [rs for rs in old if not rs["metadata"].get("deletionTimestamp")]
        excess = len(alive) - int(limit)
        if excess <= 0:
            return
        for rs in sorted(alive, key=du.revision_of)[:excess]:
            status = status_of(rs)
            if du.replicas_of(rs) or status.get("replicas") or any(is_active(p) for p in self.pods_of(rs)):
                continue
            if rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
                continue
            try:
                await self.client.delete(REPLICASET, rs["metadata"]["namespace"], rs["metadata"]["name"],
                                         uid=rs["metadata"]["uid"])
            except APIStatusError as e:
                if not e.not_found:
                    raise
            self.replicasets.remember_delete(rs)
