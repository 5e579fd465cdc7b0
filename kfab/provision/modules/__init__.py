"""The task modules kfab knows, by the name a task uses, and the fully qualified names Ansible roles use
for the same modules (ansible.builtin.copy is kfab's copy)."""

from kfab.provision.modules import (apt, apt_repository, argument_spec, assertion, authorized_key, blockinfile,
                                    cluster_cert, command, copy, cron, deb822_repository, debug, file, get_url, group,
                                    hostname, kfab_install, lineinfile, modprobe, mount, package, pip, reboot, replace,
                                    service, set_fact, stat, sysctl, template, unarchive, user, venv, wait_for)
from kfab.provision.modules.base import Module

MODULES: dict[str, Module] = {m.name: m for m in (
    package.MODULE, template.MODULE, copy.MODULE, file.MODULE, lineinfile.MODULE, lineinfile.LINE,
    blockinfile.MODULE, sysctl.MODULE, service.MODULE, command.COMMAND, command.SHELL, wait_for.MODULE,
    user.MODULE, hostname.MODULE, venv.MODULE, stat.MODULE, debug.MODULE, assertion.ASSERT, assertion.FAIL,
    set_fact.MODULE, argument_spec.MODULE, replace.MODULE, group.MODULE, apt.MODULE, authorized_key.MODULE,
    modprobe.MODULE, mount.MODULE, cron.MODULE, pip.MODULE, get_url.MODULE, unarchive.MODULE,
    deb822_repository.MODULE, apt_repository.MODULE, reboot.MODULE,
    cluster_cert.MODULE, kfab_install.MODULE,   # issue 6: certificates from the cluster CA, kfab itself
)}

# Ansible's names for kfab's modules. Only modules whose arguments kfab's module takes as Ansible's do.
COLLECTION_NAMES: dict[str, str] = {
    **{f"ansible.builtin.{name}": name for name in (
        "package", "template", "copy", "file", "lineinfile", "blockinfile", "service", "systemd",
        "command", "shell", "wait_for", "user", "group", "replace", "hostname", "apt", "cron", "pip", "get_url",
        "unarchive", "deb822_repository", "apt_repository", "reboot", "stat", "debug", "assert", "fail", "set_fact",
        "systemd_service", "validate_argument_spec", "include_tasks", "import_tasks", "include_role", "import_role",
        "meta")},
    "ansible.posix.sysctl": "sysctl", "ansible.posix.authorized_key": "authorized_key",
    "community.general.modprobe": "modprobe", "ansible.posix.mount": "mount",
    "systemd": "service", "systemd_service": "service",
}
for _name in list(COLLECTION_NAMES):
    if _name.startswith("ansible.builtin."):
        COLLECTION_NAMES["ansible.legacy." + _name.split(".")[-1]] = COLLECTION_NAMES[_name]
for _name, _target in list(COLLECTION_NAMES.items()):
    if _target in ("systemd", "systemd_service"):
        COLLECTION_NAMES[_name] = "service"


def canonical_name(key: str) -> str:
    """The short name kfab knows a task key by (ansible.builtin.copy -> copy); other keys unchanged."""
    return COLLECTION_NAMES.get(key, key)
