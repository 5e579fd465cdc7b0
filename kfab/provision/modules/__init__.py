"""The task modules kfab knows, by the name a task uses."""

from kfab.provision.modules import (cluster_cert, command, copy, file, hostname, kfab_install, line, package,
                                    service, sysctl, template, user, venv, wait_for)
from kfab.provision.modules.base import Module

MODULES: dict[str, Module] = {m.name: m for m in (
    package.MODULE, template.MODULE, copy.MODULE, file.MODULE, line.MODULE, sysctl.MODULE,
    service.MODULE, command.COMMAND, command.SHELL, wait_for.MODULE, user.MODULE, hostname.MODULE,
    venv.MODULE,
    cluster_cert.MODULE, kfab_install.MODULE,   # issue 6: certificates from the cluster CA, kfab itself
)}
