"""The local lab: Debian hosts as privileged systemd containers on their own Podman network."""

from kfab.lab.errors import LabError
from kfab.lab.lab import HostStatus, Lab, UpResult

__all__ = ["Lab", "LabError", "HostStatus", "UpResult"]
