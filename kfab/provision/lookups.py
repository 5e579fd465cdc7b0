"""lookup()/query() in templates and conditions, for the lookups roles use most: `file` (a file on the
control machine: the role's files/, the role, then beside the play file), `env` (the control machine's
environment), `template` (a template rendered with the task's variables) and `pipe` (a local command's
output). Like Ansible: lookup joins several results with commas, query (q) returns the list."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import jinja2

from kfab.provision.errors import ProvisionError
from kfab.provision.templating import file_environment, render_file


class Lookups:
    def __init__(self, search: list[Path], variables: Mapping | None = None):
        self.search = search
        self.variables = variables

    def lookup(self, name: str, *terms, wantlist: bool = False, default=None, **options):
        values = [self._one(str(name), str(term), default, options) for term in terms]
        if wantlist:
            return values
        return ",".join(str(v) for v in values) if len(values) != 1 else values[0]

    def query(self, name: str, *terms, **options):
        return self.lookup(name, *terms, wantlist=True, **options)

    def _one(self, name: str, term: str, default, options: dict):
        if name == "env":
            return os.environ.get(term, "" if default is None else default)
        if name == "pipe":
            proc = subprocess.run(["/bin/sh", "-c", term], capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                raise ProvisionError(f"lookup('pipe', {term!r}) exited {proc.returncode}: {proc.stderr.strip()}")
            return proc.stdout.rstrip("\n")
        if name in ("file", "template"):
            path = self._find(term, "templates" if name == "template" else "files")
            if name == "file":
                text = path.read_text()
                return text.rstrip("\n") if options.get("rstrip", True) else text
            if self.variables is None:
                raise ProvisionError("lookup('template') is not available here")
            return render_file(file_environment([path.parent]), path.name, self.variables)
        raise ProvisionError(f"lookup plugin ({name}) not found (kfab has file, env, template, pipe)")

    def _find(self, term: str, kind: str) -> Path:
        if os.path.isabs(term):
            candidates = [Path(term)]
        else:
            candidates = [d / kind / term for d in self.search] + [d / term for d in self.search]
        for path in candidates:
            if path.is_file():
                return path
        raise jinja2.UndefinedError(f"lookup: could not find file '{term}' (looked in "
                                    f"{', '.join(str(c.parent) for c in candidates)})")
