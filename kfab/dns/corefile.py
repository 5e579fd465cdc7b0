"""A CoreDNS Corefile serving the same records as `kfab dns`, for hosts where an operator supplies CoreDNS
(no CoreDNS build is reachable from the lab, so kfab runs its own server there)."""

from __future__ import annotations

import jinja2

# The stock kubeadm Corefile, with kfab's choices: `pods insecure` (kfab dns answers <a-b-c-d>.<ns>.pod
# names the same way) and TTL 5 (kfab dns's TTL).
COREFILE = """\
.:{{ port }} {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes {{ domain }} in-addr.arpa ip6.arpa {
{%- if kubeconfig %}
       kubeconfig {{ kubeconfig }}
{%- endif %}
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 5
    }
    prometheus :9153
    forward . {{ upstream }} {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def render_corefile(domain: str = "cluster.local", upstream: str = "/etc/resolv.conf", *,
                    kubeconfig: str | None = None, port: int = 53) -> str:
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(COREFILE)
    return template.render(domain=domain.strip("."), upstream=upstream, kubeconfig=kubeconfig, port=port)
