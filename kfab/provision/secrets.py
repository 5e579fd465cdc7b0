"""Secrets kept out of what a run prints: diffs, plans, `-v` commands and their output, errors, `--json`.

Two sources, as Ansible users expect:
- a task with `no_log: true`: its result is hidden (Ansible's own sentence), its diff keeps only the shape of
  the change (which lines changed, every line's content `********`), its commands are not shown;
- variables whose NAME matches a secret pattern (`*password*`, `*passwd*`, `*secret*`, `*token*`, `*key`,
  `*_key_*`, overridable with the variable `kfab_secret_var_patterns`): their VALUES are masked as
  `********` wherever they appear. Names ending in `_file`, `_path`, `_dir`, `_url` or `_name` are not secrets
  (`ansible_ssh_private_key_file` is where a key is, not the key): their values are paths and identifiers,
  and masking them would hide which file changed.

A diff is computed on the real text and masked line by line afterwards, so a changed password still shows as
a changed line (`-    incominguser kfab ********` / `+    incominguser kfab ********`); the old value in the
file on the host is learned from the line the new value sits in, so it is masked too.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace

MASK = "********"
NO_LOG_MESSAGE = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
DEFAULT_PATTERNS = ("*password*", "*passwd*", "*secret*", "*token*", "*key", "*_key_*")
NOT_SECRET_SUFFIXES = ("_file", "_path", "_dir", "_url", "_name")
PATTERNS_VARIABLE = "kfab_secret_var_patterns"
MIN_LENGTH = 4  # shorter values ("yes", "1") would mask ordinary words everywhere


def is_secret_name(name: str, patterns=DEFAULT_PATTERNS) -> bool:
    lowered = name.lower()
    if lowered.endswith(NOT_SECRET_SUFFIXES):
        return False
    return any(fnmatch.fnmatchcase(lowered, p) for p in patterns)


def secret_values(variables: Mapping) -> set[str]:
    """The values of the secret-named variables a task sees (strings inside lists and dicts too)."""
    try:
        patterns = tuple(variables[PATTERNS_VARIABLE]) if PATTERNS_VARIABLE in variables else DEFAULT_PATTERNS
    except Exception:  # noqa: BLE001 - a broken pattern variable falls back to the defaults
        patterns = DEFAULT_PATTERNS
    found: set[str] = set()
    for name in list(variables):
        if not is_secret_name(str(name), patterns):
            continue
        try:
            value = variables[name]
        except Exception:  # noqa: BLE001 - an unresolvable variable is reported by the task that uses it
            continue
        _strings(value, found)
    return found


def _strings(value, out: set[str]) -> None:
    if isinstance(value, str):
        if len(value) >= MIN_LENGTH:
            out.add(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _strings(v, out)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            _strings(v, out)


@dataclass
class MaskedDiff:
    """A Diff whose text is already the masked unified diff (Output and Report print `text` as it is)."""

    path: str
    before: str
    after: str
    text: str


class Masker:
    """The secret values seen so far in this run (every host's), and the masking of text with them."""

    def __init__(self):
        self._values: set[str] = set()
        self._pattern: re.Pattern | None = None
        self._lock = threading.Lock()

    def learn(self, values) -> None:
        new = {v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH} - self._values
        if new:
            with self._lock:
                self._values |= new
                ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial leftovers
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def text(self, text: str | None) -> str | None:
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def diff(self, path: str, before: str, after: str, hide_all: bool = False) -> str:
        if not hide_all:
            self._learn_old_values(before, after)
        lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                     fromfile=f"before: {path}", tofile=f"after: {path}")
        out = []
        for line in lines:
            if line.startswith(("---", "+++", "@@")):
                out.append(line)
            elif hide_all:
                out.append(line[:1] + MASK + "\n")
            else:
                out.append(self.text(line))
        return "".join(out)

    def _learn_old_values(self, before: str, after: str) -> None:
        """A line of the new text holding a secret, matched against the old text's lines with the secret as a
        wildcard: what stood there is the old secret (a rotated password must not show either)."""
        if self._pattern is None:
            return
        old_lines = before.splitlines()
        learned = set()
        for line in after.splitlines():
            if not self._pattern.search(line):
                continue
            parts = self._pattern.split(line)
            shape = re.compile("^" + r"(\S+?)".join(re.escape(p) for p in parts) + "$")
            for old in old_lines:
                m = shape.match(old)
                if m:
                    learned.update(g for g in m.groups() if g)
        self.learn(learned)

    def outcome(self, outcome, no_log: bool = False):
        """A copy of a task's Outcome fit to print and to keep in the --json report."""
        if no_log:
            commands = [(MASK, result and replace(result, stdout="", stderr="")) for _, result in outcome.commands]
            return replace(outcome, message=NO_LOG_MESSAGE if outcome.message else None, commands=commands,
                           diffs=[MaskedDiff(d.path, MASK, MASK, self.diff(d.path, d.before, d.after, True))
                                  for d in outcome.diffs])
        commands = [(self.text(cmd), result and replace(result, stdout=self.text(result.stdout),
                                                        stderr=self.text(result.stderr)))
                    for cmd, result in outcome.commands]
        diffs = [MaskedDiff(d.path, self.text(d.before), self.text(d.after), self.diff(d.path, d.before, d.after))
                 for d in outcome.diffs]
        return replace(outcome, message=self.text(outcome.message), commands=commands, diffs=diffs)
