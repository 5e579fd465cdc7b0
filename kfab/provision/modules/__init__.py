"""The task modules kfab knows, by the name a task uses."""

from kfab.provision.modules import (command, copy, file, hostname, line, package, service, sysctl, template,
                                    user, venv, wait_for)
from kfab.provision.modules.base import Module

MODULES: dict[str, Module] = {m.name: m for m in (
    package.MODULE, template.MODULE, copy.MODULE, file.MODULE, line.MODULE, sysctl.MODULE,
    service.MODULE, command.COMMAND, command.SHELL, wait_for.MODULE, user.MODULE, hostname.MODULE,
    venv.MODULE,
)}
