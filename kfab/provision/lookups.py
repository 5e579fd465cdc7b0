"""lookup()/query() in templates and conditions, for the lookups roles use most: `file` (a file on the
control machine, found on the task's search path as copy's src: provision.searchpath), `env` (the control machine's
environment), `template` (a template rendered with the task's variables) and `pipe` (a local command's
output). Like Ansible: lookup joins several results with commas, query (q) returns the list."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import jinja2

from kfab.provision.errors import ProvisionError
from kfab.provision import searchpath
from kfab.provision.templating import render_file, search_environment


class Lookups:
    def __init__(self, stack: list[Path], play_dir: Path, variables: Mapping | None = None):
        self.stack = stack
        self.play_dir = play_dir
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
            try:
                path = searchpath.find(self.stack, self.play_dir, "templates" if name == "template" else "files",
                                       term, is_role="role_path" in (self.variables or {}))
            except ProvisionError as exc:
                # UndefinedError: `lookup(...) | default(x)` and `is defined` work as for a missing variable.
                raise jinja2.UndefinedError(f"lookup('{name}'): {exc.message}") from None
            if name == "file":
                text = path.read_text()
                return text.rstrip("\n") if options.get("rstrip", True) else text
            if self.variables is None:
                raise ProvisionError("lookup('template') is not available here")
            env = search_environment(tuple(searchpath.jinja_search_path(self.stack, self.play_dir, path)))
            return render_file(env, str(path), self.variables)
        raise ProvisionError(f"lookup plugin ({name}) not found (kfab has file, env, template, pipe)")
