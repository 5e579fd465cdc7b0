"""The parts of an object every reader reaches for, as mappings even when the object leaves them out."""

from __future__ import annotations


def meta_of(obj: dict) -> dict:
    """obj.metadata, or {} when absent or null."""
    return obj.get("metadata") or {}


def spec_of(obj: dict) -> dict:
    """obj.spec, or {} when absent or null."""
    return obj.get("spec") or {}


def status_of(obj: dict) -> dict:
    """obj.status, or {} when absent or null."""
    return obj.get("status") or {}
