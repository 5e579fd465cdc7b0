"""What every long-running kfab process does the same way: log to stderr in one format, and stop cleanly on
SIGTERM or SIGINT (systemd's stop, Ctrl-C) by cancelling its main coroutine or setting its stop event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Coroutine

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool, *, verbose_level: int = logging.INFO, quiet_level: int = logging.WARNING) -> None:
    logging.basicConfig(level=verbose_level if verbose else quiet_level, format=LOG_FORMAT)


def run_until_signal(main: Coroutine, *, errors: tuple[type[BaseException], ...] = (),
                     stop: asyncio.Event | None = None) -> int:
    """Run `main` until it ends or a signal arrives; its int result is the exit code (else 0).

    A signal cancels `main`, or sets `stop` when given (for a server that winds itself down). An exception
    of `errors` (a bad kubeconfig, a port in use) is one line on stderr and exit code 1."""

    async def runner() -> int | None:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set if stop is not None else task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            return await task
        return None

    try:
        result = asyncio.run(runner())
    except errors as e:
        print(f"kfab: {e}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
