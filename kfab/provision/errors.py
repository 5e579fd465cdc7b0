"""One error type for everything the provisioner refuses, printed as one line naming where it happened."""

from __future__ import annotations


class ProvisionError(Exception):
    """A problem the user must fix: names the file (and line), host and task where known."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 host: str | None = None, task: str | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.host = host
        self.task = task

    def located(self, *, file: str | None = None, line: int | None = None,
                host: str | None = None, task: str | None = None) -> "ProvisionError":
        """Fill in location details that the raiser did not know (the inner-most one wins)."""
        self.file = self.file or file
        self.line = self.line or line
        self.host = self.host or host
        self.task = self.task or task
        return self

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.host:
            where.append(f"host {self.host}")
        if self.task:
            where.append(f"task '{self.task}'")
        return (": ".join(where) + ": " if where else "") + self.message


class HostUnreachable(Exception):
    """SSH to a host failed (connection, authentication or host key); the message is one line."""
