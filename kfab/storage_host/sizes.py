"""Sizes of provisioned volumes: a claim's `resources.requests.storage` quantity -> bytes to allocate.

Kubernetes quantities (Ki/Mi/Gi binary, k/M/G decimal) are parsed by kfab.objects.quantity. A LUN's backing
file is rounded UP to a whole MiB (what the claim asked for is a minimum, as the external provisioners treat
it) and never below a minimum a filesystem fits in.
"""

from __future__ import annotations

from kfab.objects.quantity import QuantityError, int_value
from kfab.objects.meta import spec_of

KI, MI, GI, TI = 1 << 10, 1 << 20, 1 << 30, 1 << 40
# ext4 with its journal needs a few MiB; smaller LUNs would make mkfs fail on the node.
MIN_LUN_BYTES = 8 * MI


class SizeError(ValueError):
    pass


def request_bytes(claim: dict) -> int:
    """The claim's storage request in bytes; a clear error when it is missing or not a positive quantity."""
    requests = ((spec_of(claim).get("resources") or {}).get("requests") or {})
    text = requests.get("storage")
    if text in (None, ""):
        raise SizeError("the claim has no spec.resources.requests.storage")
    try:
        value = int_value(text)
    except QuantityError as e:
        raise SizeError(f"spec.resources.requests.storage {text!r} is not a quantity: {e}") from None
    if value <= 0:
        raise SizeError(f"spec.resources.requests.storage {text!r} must be greater than zero")
    return value


def round_up(size: int, unit: int = MI, minimum: int = 0) -> int:
    """`size` rounded up to a multiple of `unit`, and at least `minimum` (itself rounded up)."""
    size = max(size, minimum)
    return -(-size // unit) * unit


def lun_bytes(requested: int) -> int:
    return round_up(requested, MI, MIN_LUN_BYTES)


def format_bytes(size: int) -> str:
    """Bytes as the largest exact binary quantity (1073741824 -> "1Gi", 8388608 -> "8Mi", 1000 -> "1000")."""
    for suffix, unit in (("Ti", TI), ("Gi", GI), ("Mi", MI), ("Ki", KI)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)
