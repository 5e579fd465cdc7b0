"""The one way tests wait: poll a predicate until it returns something truthy."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(what: str, predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.1,
               retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """predicate()'s first truthy result, polled every `interval` seconds; AssertionError naming `what` (and the
    last value or error) after `timeout` seconds. Exceptions of the `retry_on` types count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except retry_on as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)
