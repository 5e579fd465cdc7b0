"""The Pod Security Standards' checks (k8s.io/pod-security-admission/policy), as upstream words their results.

`violations(level, pod_metadata, pod_spec)` -> [(reason, detail)] for the baseline or restricted level, e.g.
("privileged", 'container "c" must not set securityContext.privileged=true'). The checks are those of the
latest policy version; kfab applies them to every version label (upstream's older versions differ only in
details kfab does not serve, such as Windows host process pods).
"""

from __future__ import annotations

BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
RESTRICTED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret")
ALLOWED_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
LEVELS = ("privileged", "baseline", "restricted")


def _quoted(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _containers_phrase(names: list[str], verb_one: str, verb_many: str) -> str:
    """`container "a" must` / `containers "a", "b" must` (upstream's pluralisation)."""
    return (f"container {_quoted(names)} {verb_one}" if len(names) == 1
            else f"containers {_quoted(names)} {verb_many}")


def _all_containers(spec: dict) -> list[dict]:
    return [c or {} for group in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(group) or []]


def _sc(container: dict) -> dict:
    return container.get("securityContext") or {}


def baseline(meta: dict, spec: dict) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pod_sc = spec.get("securityContext") or {}
    containers = _all_containers(spec)
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        out.append(("host namespaces", ", ".join(host)))
    privileged = [c.get("name", "") for c in containers if _sc(c).get("privileged") is True]
    if privileged:
        out.append(("privileged", _containers_phrase(privileged, "must not set securityContext.privileged=true",
                                                     "must not set securityContext.privileged=true")))
    caps_by, added = [], []
    for c in containers:
        extra = [str(a) for a in ((_sc(c).get("capabilities") or {}).get("add") or [])
                 if str(a) not in BASELINE_CAPABILITIES]
        if extra:
            caps_by.append(c.get("name", ""))
            added.extend(a for a in extra if a not in added)
    if caps_by:
        out.append(("non-default capabilities", _containers_phrase(caps_by, "must not include", "must not include")
                    + f" {_quoted(added)} in securityContext.capabilities.add"))
    host_paths = [v.get("name", "") for v in spec.get("volumes") or [] if (v or {}).get("hostPath") is not None]
    if host_paths:
        out.append(("hostPath volumes", ("volume " if len(host_paths) == 1 else "volumes ") + _quoted(host_paths)))
    port_users, ports = [], []
    for c in containers:
        used = [p.get("hostPort") for p in c.get("ports") or [] if (p or {}).get("hostPort")]
        if used:
            port_users.append(c.get("name", ""))
            ports.extend(str(p) for p in used if str(p) not in ports)
    if port_users:
        out.append(("hostPort", _containers_phrase(port_users, "uses", "use")
                    + (" hostPort " if len(ports) == 1 else " hostPorts ") + ", ".join(ports)))
    bad_selinux = []
    for where, sc in [("pod", pod_sc)] + [(f'container "{c.get("name", "")}"', _sc(c)) for c in containers]:
        opts = sc.get("seLinuxOptions") or {}
        if opts.get("type", "") not in ALLOWED_SELINUX_TYPES or opts.get("user") or opts.get("role"):
            bad_selinux.append(where)
    if bad_selinux:
        out.append(("seLinuxOptions", f"{', '.join(bad_selinux)} set forbidden securityContext.seLinuxOptions"))
    unmasked = [c.get("name", "") for c in containers if _sc(c).get("procMount") not in (None, "Default")]
    if unmasked:
        out.append(("procMount", _containers_phrase(unmasked, 'must not set securityContext.procMount to "Unmasked"',
                                                    'must not set securityContext.procMount to "Unmasked"')))
    unconfined = []
    if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        unconfined.append("pod")
    unconfined += [f'container "{c.get("name", "")}"' for c in containers
                   if (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined"]
    if unconfined:
        out.append(("seccompProfile", f'{" and ".join(unconfined)} must not set securityContext.seccompProfile.type '
                                      'to "Unconfined"'))
    sysctls = [str((s or {}).get("name")) for s in pod_sc.get("sysctls") or []
               if (s or {}).get("name") not in SAFE_SYSCTLS]
    if sysctls:
        out.append(("forbidden sysctls", ", ".join(sysctls)))
    return out


def restricted(meta: dict, spec: dict) -> list[tuple[str, str]]:
    out = baseline(meta, spec)
    pod_sc = spec.get("securityContext") or {}
    containers = _all_containers(spec)
    bad_volumes, bad_types = [], []
    for v in spec.get("volumes") or []:
        kinds = [k for k in (v or {}) if k != "name"]
        if kinds and kinds[0] not in RESTRICTED_VOLUME_TYPES:
            bad_volumes.append(v.get("name", ""))
            if kinds[0] not in bad_types:
                bad_types.append(kinds[0])
    if bad_volumes:
        out.append(("restricted volume types",
                    (f'volume {_quoted(bad_volumes)} uses restricted volume type ' if len(bad_volumes) == 1
                     else f'volumes {_quoted(bad_volumes)} use restricted volume types ') + _quoted(bad_types)))
    escalating = [c.get("name", "") for c in containers if _sc(c).get("allowPrivilegeEscalation") is not False]
    if escalating:
        out.append(("allowPrivilegeEscalation != false",
                    _containers_phrase(escalating, "must set securityContext.allowPrivilegeEscalation=false",
                                       "must set securityContext.allowPrivilegeEscalation=false")))
    no_drop, bad_add = [], []
    for c in containers:
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in [str(d) for d in caps.get("drop") or []]:
            no_drop.append(c.get("name", ""))
        if any(str(a) != "NET_BIND_SERVICE" for a in caps.get("add") or []):
            bad_add.append(c)
    if no_drop or bad_add:
        parts = []
        if no_drop:
            parts.append(_containers_phrase(no_drop, 'must set securityContext.capabilities.drop=["ALL"]',
                                            'must set securityContext.capabilities.drop=["ALL"]'))
        if bad_add:
            names = [c.get("name", "") for c in bad_add]
            caps = []
            for c in bad_add:
                caps += [str(a) for a in (_sc(c).get("capabilities") or {}).get("add") or []
                         if str(a) != "NET_BIND_SERVICE" and str(a) not in caps]
            parts.append(_containers_phrase(names, "must not include", "must not include")
                         + f" {_quoted(caps)} in securityContext.capabilities.add")
        out.append(("unrestricted capabilities", "; ".join(parts)))
    pod_non_root = pod_sc.get("runAsNonRoot")
    not_non_root = [c.get("name", "") for c in containers
                    if _sc(c).get("runAsNonRoot") is False
                    or (_sc(c).get("runAsNonRoot") is None and pod_non_root is not True)]
    if pod_non_root is False or not_non_root:
        if pod_non_root is False:
            detail = "pod must not set securityContext.runAsNonRoot=false"
        elif len(not_non_root) == len(containers):
            detail = (f"pod or {_containers_phrase(not_non_root, 'must', 'must')} set "
                      "securityContext.runAsNonRoot=true")
        else:
            detail = f"{_containers_phrase(not_non_root, 'must', 'must')} not set securityContext.runAsNonRoot=false"
        out.append(("runAsNonRoot != true", detail))
    root_users = [c.get("name", "") for c in containers if _sc(c).get("runAsUser") == 0]
    if pod_sc.get("runAsUser") == 0 or root_users:
        who = ["pod"] if pod_sc.get("runAsUser") == 0 else []
        who += [f'container "{n}"' for n in root_users]
        out.append(("runAsUser=0", f"{' and '.join(who)} must not set runAsUser=0"))
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    unset = [c.get("name", "") for c in containers
             if (_sc(c).get("seccompProfile") or {}).get("type") is None and pod_seccomp is None]
    if unset and not any(name == "seccompProfile" for name, _ in out):
        out.append(("seccompProfile", f"pod or {_containers_phrase(unset, 'must', 'must')} set "
                                      'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"'))
    return out


def violations(level: str, meta: dict, spec: dict) -> list[tuple[str, str]]:
    if level == "baseline":
        return baseline(meta, spec)
    if level == "restricted":
        return restricted(meta, spec)
    return []


def describe(found: list[tuple[str, str]]) -> str:
    """`privileged (container "c" must not set ...), hostPort (...)`, as upstream joins them."""
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in found)
