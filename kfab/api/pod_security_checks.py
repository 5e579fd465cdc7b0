"""The Pod Security Standards' checks (k8s.io/pod-security-admission/policy), as upstream words their results.

`violations(level, pod_metadata, pod_spec, version)` -> [(reason, detail)] for the baseline or restricted
level at a policy version ("latest" or "v1.N"), e.g.
("privileged", 'container "c" must not set securityContext.privileged=true'). Each check applies from the
version upstream introduced it (runAsUser=0 from v1.23, probe/lifecycle hosts from v1.34, ...); the allowed
sysctls and SELinux types grow with the version; from v1.25 Windows pods (spec.os.name=windows) skip the
restricted Linux-only checks; restricted's own capabilities and seccomp checks replace baseline's.
"""

from __future__ import annotations

import re

LATEST = (1, 10_000)
_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                         "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
# the sysctls baseline allows, by the version that added them
SAFE_SYSCTLS = {"kernel.shm_rmid_forced": 0, "net.ipv4.ip_local_port_range": 0,
                "net.ipv4.ip_unprivileged_port_start": 0, "net.ipv4.tcp_syncookies": 0,
                "net.ipv4.ping_group_range": 0, "net.ipv4.ip_local_reserved_ports": 27,
                "net.ipv4.tcp_keepalive_time": 29, "net.ipv4.tcp_fin_timeout": 29,
                "net.ipv4.tcp_keepalive_intvl": 29, "net.ipv4.tcp_keepalive_probes": 29,
                "net.ipv4.tcp_rmem": 32, "net.ipv4.tcp_wmem": 32}
RESTRICTED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                           "projected", "secret")
ALLOWED_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}  # + container_engine_t, v1.31
LEVELS = ("privileged", "baseline", "restricted")


def parse_version(text: str) -> tuple[int, int]:
    """"latest" or "v1.N" (upstream's ParseVersion); ValueError in upstream's words otherwise."""
    if text == "latest":
        return LATEST
    match = _VERSION.match(text)
    if not match:
        raise ValueError('must be "latest" or "v1.x"')
    return (1, int(match.group(1)))


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


def _apparmor(meta: dict, spec: dict) -> tuple[str, str] | None:
    """Profile types other than RuntimeDefault/Localhost, and beta annotations other than runtime/default,
    localhost/* or empty."""
    setters, values = [], set()
    pod_type = ((spec.get("securityContext") or {}).get("appArmorProfile") or {}).get("type")
    if pod_type is not None and pod_type not in ("RuntimeDefault", "Localhost"):
        setters.append("pod")
        values.add(str(pod_type))
    bad = []
    for c in _all_containers(spec):
        kind = (_sc(c).get("appArmorProfile") or {}).get("type")
        if kind is not None and kind not in ("RuntimeDefault", "Localhost"):
            bad.append(c.get("name", ""))
            values.add(str(kind))
    if bad:
        setters.append(f"{'container' if len(bad) == 1 else 'containers'} {_quoted(bad)}")
    listed = sorted(values)
    annotations = sorted(f'{k}="{v}"' for k, v in (meta.get("annotations") or {}).items()
                         if str(k).startswith(APPARMOR_ANNOTATION_PREFIX)
                         and not (v in ("", "runtime/default") or str(v).startswith("localhost/")))
    if annotations:
        listed += annotations
        setters.append("annotation" if len(annotations) == 1 else "annotations")
    if not setters:
        return None
    return ("forbidden AppArmor profile" if len(listed) == 1 else "forbidden AppArmor profiles",
            f"{' and '.join(setters)} must not set AppArmor profile type to {_quoted(listed)}")


def _host_process(spec: dict) -> tuple[str, str] | None:
    setters = ["pod"] if ((spec.get("securityContext") or {}).get("windowsOptions") or {}).get("hostProcess") \
        is True else []
    bad = [c.get("name", "") for c in _all_containers(spec)
           if (_sc(c).get("windowsOptions") or {}).get("hostProcess") is True]
    if bad:
        setters.append(f"{'container' if len(bad) == 1 else 'containers'} {_quoted(bad)}")
    if not setters:
        return None
    return ("hostProcess", f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true")


def _probe_hosts(spec: dict) -> tuple[str, str] | None:
    names, hosts = set(), set()
    for c in _all_containers(spec):
        handlers = [c.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(c.get("lifecycle") or {}).get(h) for h in ("postStart", "preStop")]
        for handler in handlers:
            for kind in ("httpGet", "tcpSocket"):
                host = ((handler or {}).get(kind) or {}).get("host")
                if host:
                    names.add(c.get("name", ""))
                    hosts.add(str(host))
    if not names:
        return None
    return ("probe or lifecycle host",
            f"{'container' if len(names) == 1 else 'containers'} {_quoted(sorted(names))} "
            f"{'uses' if len(names) == 1 else 'use'} "
            f"{'probe or lifecycle host' if len(hosts) == 1 else 'probe or lifecycle hosts'} {_quoted(sorted(hosts))}")


def baseline(meta: dict, spec: dict, version: tuple[int, int] = LATEST) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pod_sc = spec.get("securityContext") or {}
    containers = _all_containers(spec)
    apparmor = _apparmor(meta, spec)
    if apparmor:
        out.append(apparmor)
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
    probe_hosts = _probe_hosts(spec) if version >= (1, 34) else None
    if probe_hosts:
        out.append(probe_hosts)
    selinux_types = ALLOWED_SELINUX_TYPES | ({"container_engine_t"} if version >= (1, 31) else set())
    bad_selinux = []
    for where, sc in [("pod", pod_sc)] + [(f'container "{c.get("name", "")}"', _sc(c)) for c in containers]:
        opts = sc.get("seLinuxOptions") or {}
        if opts.get("type", "") not in selinux_types or opts.get("user") or opts.get("role"):
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
               if SAFE_SYSCTLS.get((s or {}).get("name"), 10_000) > version[1]]
    if sysctls:
        out.append(("forbidden sysctls", ", ".join(sysctls)))
    host_process = _host_process(spec)
    if host_process:
        out.append(host_process)
    return out


def restricted(meta: dict, spec: dict, version: tuple[int, int] = LATEST) -> list[tuple[str, str]]:
    windows = version >= (1, 25) and (spec.get("os") or {}).get("name") == "windows"
    # restricted's capabilities (v1.22) and seccomp (v1.19) checks take the place of baseline's
    replaced = ({"non-default capabilities"} if version >= (1, 22) else set()) \
        | ({"seccompProfile"} if version >= (1, 19) else set())
    out = [found for found in baseline(meta, spec, version) if found[0] not in replaced]
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
    if escalating and version >= (1, 8) and not windows:
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
    if (no_drop or bad_add) and version >= (1, 22) and not windows:
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
    if (pod_sc.get("runAsUser") == 0 or root_users) and version >= (1, 23):
        who = ["pod"] if pod_sc.get("runAsUser") == 0 else []
        who += [f'container "{n}"' for n in root_users]
        out.append(("runAsUser=0", f"{' and '.join(who)} must not set runAsUser=0"))
    seccomp = _restricted_seccomp(pod_sc, containers) if version >= (1, 19) and not windows else None
    if seccomp:
        out.append(seccomp)
    return out


def _restricted_seccomp(pod_sc: dict, containers: list[dict]) -> tuple[str, str] | None:
    """RuntimeDefault or Localhost, set on the pod or on every container (upstream's seccompProfile_restricted)."""
    setters, values = [], set()
    pod_type = (pod_sc.get("seccompProfile") or {}).get("type")
    pod_set = pod_type in ("RuntimeDefault", "Localhost")
    if pod_type is not None and not pod_set:
        setters.append("pod")
        values.add(str(pod_type))
    explicit, implicit = [], []
    for c in containers:
        profile = _sc(c).get("seccompProfile")
        if profile is not None:
            kind = (profile or {}).get("type")
            if kind not in ("RuntimeDefault", "Localhost"):
                explicit.append(c.get("name", ""))
                values.add(str(kind))
        elif not pod_set:
            implicit.append(c.get("name", ""))
    if explicit:
        setters.append(f"{'container' if len(explicit) == 1 else 'containers'} {_quoted(explicit)}")
    if setters:
        return ("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to "
                                  f"{_quoted(sorted(values))}")
    if implicit:
        return ("seccompProfile", f"pod or {'container' if len(implicit) == 1 else 'containers'} "
                                  f'{_quoted(implicit)} must set securityContext.seccompProfile.type to '
                                  '"RuntimeDefault" or "Localhost"')
    return None


def violations(level: str, meta: dict, spec: dict, version: str = "latest") -> list[tuple[str, str]]:
    """The checks `level` fails at `version` ("latest" or "v1.N"; a version kfab cannot parse counts as latest)."""
    try:
        parsed = parse_version(version)
    except ValueError:
        parsed = LATEST
    if level == "baseline":
        return baseline(meta, spec, parsed)
    if level == "restricted":
        return restricted(meta, spec, parsed)
    return []


def describe(found: list[tuple[str, str]]) -> str:
    """`privileged (container "c" must not set ...), hostPort (...)`, as upstream joins them."""
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in found)
