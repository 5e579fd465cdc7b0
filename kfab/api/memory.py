"""Give freed heap memory back to the kernel after load, and keep the garbage collector off the request path.

A large list or a burst of writes allocates hundreds of MB of small objects (decoded dicts, response bytes);
once they are freed, glibc keeps the pages in its arenas, so the process's RSS stays at its peak for good.
malloc_trim(0) returns the free pages of every arena. It costs a few ms on a large heap, so it runs on a
timer, not after each request; elsewhere than glibc (musl, macOS) there is nothing to call and this is a no-op.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger(__name__)

TRIM_INTERVAL = 10.0  # seconds between trims: memory is back within this long after a load ends
# Seconds between full collections. With the young threshold below, the oldest generation is collected only
# after millions of allocations, and reference cycles wait for it: every failed client request (aiohttp's
# exception, traceback and frames hold its TLS connection: the socket, the SSL object, its buffers) is one.
# With 100 hollow nodes whose resource metrics cannot be scraped, 100 such cycles per 15 s scrape were
# 11,000-23,000 garbage objects and 6-12 MB of RSS under load. A full collection pauses the event loop for
# about 10 ms per 1,000 pods held in informers (3,000 decoded pods: 28 ms at load 6), once per interval.
FULL_COLLECTION_INTERVAL = 30.0
# Young-generation threshold (CPython's default is 700 allocations). A list of 12,000 objects allocates
# ~150,000 containers that all survive until the response is written, so with 700 the collector ran ~200
# times per list, each time scanning the survivors so far: more than half of a list's CPU
# (12,000 ConfigMaps decoded and encoded: 197 ms CPU, 86 ms with the collector off, 96 ms with 50,000).
GC_YOUNG_THRESHOLD = 50_000
# asyncio gives every TLS connection a receive buffer of SSLProtocol.max_size (256 KiB), zero-filled when the
# connection is made, so resident at once. `kfab server` has both ends of the in-process controllers' and
# scheduler's connections (a watch each per resource type) and the client end of a metrics scrape per node:
# tracemalloc saw 322 of these buffers holding 42 MB idle, ~1,000 holding 135 MB with 100 hollow nodes.
# A TLS record carries at most 16 KiB, so 16 KiB reads cost at most one more recv per record: a few ms on a
# 32 MB body.
TLS_RECEIVE_BUFFER = 16 * 1024


def bound_tls_buffers() -> None:
    """Call before the first TLS connection: every later one, server and client end, gets the smaller buffer."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_RECEIVE_BUFFER


def tune_garbage_collector() -> None:
    """Call once the server is up: what startup made (modules, schemas, the registry) lives for the whole
    process, so it is frozen out of every later collection; and young collections run 70x less often."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


# glibc serves a block of 128 KiB or more from an mmap of its own, unmapped when freed - until the first such
# block is freed: then it raises that threshold (up to 32 MiB), and later large blocks (request and response
# bodies, large stored values) come from the heap, where a long-lived small object next to them keeps their
# pages. Setting the threshold keeps it at 128 KiB.
M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)
MMAP_THRESHOLD = 128 * 1024


def _glibc(function: str):
    """glibc's `function`, or None elsewhere (musl, macOS) or where no C library is found."""
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), function) if name else None
    except (OSError, AttributeError):  # not glibc
        return None


def map_large_blocks() -> None:
    mallopt = _glibc("mallopt")
    if mallopt is not None:
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


async def return_freed_memory(interval: float = TRIM_INTERVAL,
                              full_collection_interval: float = FULL_COLLECTION_INTERVAL) -> None:
    """Until cancelled: collect garbage cycles every `full_collection_interval` seconds, and give free heap
    pages back to the kernel every `interval`."""
    trim = _glibc("malloc_trim")
    if trim is None:
        log.debug("no malloc_trim in this C library: freed memory stays with the allocator")
    else:
        trim.argtypes = [ctypes.c_size_t]
    loop = asyncio.get_running_loop()
    collected_at = loop.time()
    while True:
        await asyncio.sleep(interval)
        if loop.time() - collected_at >= full_collection_interval:
            gc.collect()
            collected_at = loop.time()
        if trim is not None:
            trim(0)
