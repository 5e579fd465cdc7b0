"""The API server gives memory back after load: garbage cycles are collected on a timer, not only when the
(tuned, rare) oldest-generation collection would come."""

from __future__ import annotations

import asyncio
import gc
import weakref

from kfab.api.memory import return_freed_memory


class Node:
    def __init__(self):
        self.self = self  # a reference cycle: only the cycle collector frees it


def test_garbage_cycles_are_collected_on_the_timer():
    async def main() -> bool:
        cycle = Node()
        gone = weakref.ref(cycle)
        del cycle
        timer = asyncio.create_task(return_freed_memory(interval=0.01, full_collection_interval=0.02))
        try:
            for _ in range(200):
                if gone() is None:
                    return True
                await asyncio.sleep(0.01)
            return False
        finally:
            timer.cancel()

    gc.disable()  # no automatic collection: only the timer can free the cycle
    try:
        assert asyncio.run(main())
    finally:
        gc.enable()
