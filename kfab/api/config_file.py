"""The configuration files kube-apiserver's flags name (audit policy, admission configuration): one YAML
object of a known kind, or a ValueError naming the file."""

from __future__ import annotations

from pathlib import Path

import yaml


def load_kind(path: Path, kind: str) -> dict:
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the {kind}: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise ValueError(f"{path}: not a {kind} (kind: {kind})")
    return doc
