"""What a task module is: read the host's state, compare it with the task's arguments, and yield the
changes (commands to run, files to put). A module never runs anything itself: the runner owns SSH,
sudo, check mode, output and errors. So check mode is "collect, don't run", idempotence is "nothing
yielded", and a unit test feeds state and asserts the yielded changes."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


# ---- what modules yield ---------------------------------------------------------------------------

@dataclass
class Command:
    """A command to run on the host (as the become user). `once`: run at most once per host per run
    (e.g. the apt cache update). The runner sends back a CommandResult (None in check mode)."""
    cmd: str
    once: str | None = None
    daemon_reload: bool = False   # runner clears the host's "unit files changed" mark after this
    changes: bool = True          # False: run, but no change by itself (Ansible's systemd daemon_reload)


@dataclass
class PutFile:
    path: str
    content: bytes
    mode: str | None = None    # octal string such as "0644"; None keeps the current mode (0644 if new)
    owner: str | None = None
    group: str | None = None
    validate: str | None = None   # a command with %s (the new file) that must succeed before it replaces the old
    backup: bool = False          # keep the old file as <path>.<timestamp>~ first


@dataclass
class Diff:
    """Shown with --diff; not a change by itself."""
    path: str
    before: str
    after: str


@dataclass
class Fail:
    message: str


@dataclass
class Result:
    """Extra fields for the task's registered result (`ansible_facts` in it become host variables)."""
    data: dict


@dataclass
class Message:
    """Text shown on the task's result line (debug, assert); not a change."""
    text: str


@dataclass
class Reboot:
    """Restart the host and wait for it (the reboot module): the runner runs `binary arguments` (the binary
    looked up in `search_paths` unless absolute), then waits for `boot_time_command` to print something new
    and `test_command` to succeed, reconnecting as needed, each within `reboot_timeout` seconds."""
    binary: str
    arguments: str
    search_paths: list
    boot_time_command: str
    test_command: str
    reboot_timeout: int
    connect_timeout: int | None
    post_reboot_delay: int


Change = Command | PutFile | Diff | Fail | Result | Message | Reboot


@dataclass
class CommandResult:
    rc: int
    stdout: str
    stderr: str


# ---- what modules read ----------------------------------------------------------------------------

@dataclass
class FileInfo:
    kind: str              # file | directory | link | other
    mode: str              # "0644"
    owner: str
    group: str
    target: str | None = None      # for links
    content: bytes | None = None   # for files, when asked


@dataclass
class UnitInfo:
    exists: bool
    enabled: str    # enabled | disabled | static | masked | ... (systemctl is-enabled)
    active: str     # active | inactive | failed | activating | ...


class HostState(Protocol):
    check: bool
    unit_files_changed: bool

    def file(self, path: str, content: bool = False) -> FileInfo | None: ...
    def packages(self, names: list[str]) -> dict[str, bool]: ...
    def sysctl(self, key: str) -> str | None: ...
    def unit(self, name: str) -> UnitInfo: ...
    def succeeds(self, cmd: str) -> bool: ...
    def user(self, name: str) -> dict | None: ...
    def wait_for(self, what: str, timeout: float, present: bool) -> bool: ...
    def current_hostname(self) -> str: ...
    def stat(self, path: str, follow: bool, checksum: bool) -> dict | None: ...
    def group(self, name: str) -> dict | None: ...
    def query(self, cmd: str) -> str | None: ...   # a read-only command's stdout (None when it fails)


class TaskFiles(Protocol):
    """Where a task finds its role's files and templates."""
    def render_template(self, src: str) -> str: ...
    def read_file(self, src: str) -> bytes: ...
    def local_files(self, directory: str, suffix: str = "") -> dict[str, bytes]: ...
    def evaluate(self, expression: str): ...


# ---- how modules are described ---------------------------------------------------------------------

@dataclass
class Arg:
    required: bool = False
    choices: tuple = ()
    default: object = None


@dataclass
class Module:
    name: str
    plan: Callable[[dict, HostState, TaskFiles], Iterator[Change]]
    args: dict[str, Arg] = field(default_factory=dict)
    free_form: str | None = None     # `command: ls -l` means {cmd: "ls -l"}
    doc: str = ""
    any_args: bool = False           # set_fact: every key is a variable name, not a declared argument
    aliases: dict[str, str] = field(default_factory=dict)   # Ansible's other names: file's dest/name -> path

    def with_defaults(self, args: dict) -> dict:
        full = {k: a.default for k, a in self.args.items()}
        full.update(args)
        return full


# ---- helpers shared by the file-shaped modules -------------------------------------------------------

def octal_mode(mode) -> str | None:
    """Mode as a 4-digit octal string. YAML reads an unquoted 0644 as the integer 420 (octal), so an int is
    taken as that number; a string is read as octal digits, as Ansible does."""
    if mode is None or mode == "":
        return None
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode).strip()
        if not text or any(c not in "01234567" for c in text):
            raise ValueError(f"mode must be octal digits such as '0644', got {mode!r}")
        value = int(text, 8)
    if value > 0o7777:
        raise ValueError(f"mode {mode!r} is out of range")
    return f"{value:04o}"


def q(text: str) -> str:
    return shlex.quote(str(text))


def attribute_changes(path: str, current: FileInfo, mode, owner, group) -> Iterator[Change]:
    """chmod/chown when the existing path's attributes differ from the wanted ones."""
    wanted = octal_mode(mode)
    if wanted and wanted != current.mode:
        yield Command(f"chmod {wanted} {q(path)}")
    if (owner and owner != current.owner) or (group and group != current.group):
        spec = (owner or current.owner) + ":" + (group or current.group)
        yield Command(f"chown {q(spec)} {q(path)}")


# The arguments every module that writes a whole file takes (Ansible's file attributes, validate, backup).
FILE_ARGS = {"mode": Arg(), "owner": Arg(), "group": Arg(), "validate": Arg(), "backup": Arg(default=False)}


def file_attributes(args: dict) -> dict:
    """put_file's keyword arguments from a task's FILE_ARGS."""
    return {k: args.get(k) for k in FILE_ARGS}


def put_file(host: HostState, path: str, content: bytes, mode=None, owner=None, group=None, validate=None,
             backup=False) -> Iterator[Change]:
    """The shared shape of template/copy/line: compare the whole content, then the attributes."""
    current = host.file(path, content=True)
    if current is not None and current.kind != "file":
        yield Fail(f"{path} exists and is a {current.kind}, not a file")
        return
    before = current.content if current else None
    if before != content:
        yield Diff(path, _text(before), _text(content))
        if validate is not None and "%s" not in str(validate):
            yield Fail(f"validate must contain %s (the file to check): {validate!r}")
            return
        yield PutFile(path, content, octal_mode(mode) or (current.mode if current else None),
                      owner or (current.owner if current else None),
                      group or (current.group if current else None),
                      None if validate is None else str(validate), as_bool(backup) and current is not None)
        return
    yield from attribute_changes(path, current, mode, owner, group)


def _text(data: bytes | None) -> str:
    if data is None:
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"<binary, {len(data)} bytes>\n"


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "on", "1", "y")
    return bool(value)
