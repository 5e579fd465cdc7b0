"""The default ClusterRoles and ClusterRoleBindings a new cluster starts with (kube-apiserver's bootstrap policy).

Kubernetes builds admin/edit/view by aggregation (aggregationRule + labels); kfab does not evaluate
aggregationRule, so these roles carry their rules directly, written for the kinds kfab serves.
"""

from __future__ import annotations

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def rule(groups, resources, verbs, names=None) -> dict:
    r = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        r["resourceNames"] = list(names)
    return r


def url_rule(urls, verbs=("get",)) -> dict:
    return {"nonResourceURLs": list(urls), "verbs": list(verbs)}


_CORE_WORKLOADS = ["pods", "services", "endpoints", "configmaps", "persistentvolumeclaims", "serviceaccounts",
                   "events", "replicationcontrollers"]
_APPS = ["deployments", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets",
         "statefulsets/scale", "daemonsets", "controllerrevisions"]

VIEW_RULES = [
    rule([""], _CORE_WORKLOADS + ["pods/log", "pods/status", "services/status", "persistentvolumeclaims/status",
                                  "namespaces/status", "resourcequotas", "limitranges", "bindings"], READ),
    rule([""], ["namespaces"], READ),
    rule(["apps"], _APPS + ["deployments/status", "replicasets/status", "statefulsets/status",
                            "daemonsets/status"], READ),
    rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    rule(["batch"], ["jobs", "jobs/status", "cronjobs", "cronjobs/status"], READ),
    rule(["discovery.k8s.io"], ["endpointslices"], READ),
    rule(["events.k8s.io"], ["events"], READ),
    rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
    rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
    # metrics-server's system:aggregated-metrics-reader, aggregated into view/edit/admin
    rule(["metrics.k8s.io"], ["pods", "nodes"], READ),
]

EDIT_RULES = VIEW_RULES + [
    rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "pods/eviction"], WRITE),
    rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], READ),
    rule([""], ["configmaps", "endpoints", "persistentvolumeclaims", "replicationcontrollers", "services",
                "services/proxy", "secrets", "serviceaccounts", "events"], WRITE),
    rule([""], ["secrets"], READ),
    rule([""], ["serviceaccounts/token"], ["create"]),
    rule(["apps"], _APPS, WRITE),
    rule(["policy"], ["poddisruptionbudgets"], WRITE),
    rule(["batch"], ["jobs", "cronjobs"], WRITE),
    rule(["discovery.k8s.io"], ["endpointslices"], WRITE),
    rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
]

ADMIN_RULES = EDIT_RULES + [
    rule(["rbac.authorization.k8s.io"], ["roles", "rolebindings"], ALL),
    rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
]

# name -> rules. Bindings below; a role with no binding here is meant for RoleBindings users create.
CLUSTER_ROLES: dict[str, list[dict]] = {
    "cluster-admin": [rule(["*"], ["*"], ["*"]), url_rule(["*"], ["*"])],
    "system:discovery": [url_rule(["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                   "/openapi/*", "/readyz", "/version", "/version/"])],
    "system:basic-user": [
        rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
        rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
    ],
    "system:public-info-viewer": [url_rule(["/healthz", "/livez", "/readyz", "/version", "/version/"])],
    "admin": ADMIN_RULES,
    "edit": EDIT_RULES,
    "view": VIEW_RULES,
    "system:aggregated-metrics-reader": [rule(["metrics.k8s.io"], ["pods", "nodes"], READ)],
    # The cluster's own components (client certs issued with these user/group names).
    "system:kube-scheduler": [
        rule([""], ["pods", "nodes", "namespaces", "services", "persistentvolumes", "persistentvolumeclaims",
                    "replicationcontrollers"], READ),
        rule([""], ["pods/binding", "bindings"], ["create"]),
        rule([""], ["pods/status"], ["patch", "update"]),
        rule([""], ["pods"], ["delete"]),  # preemption's victims
        rule([""], ["persistentvolumeclaims"], ["patch", "update"]),  # volume.kubernetes.io/selected-node
        rule(["policy"], ["poddisruptionbudgets"], READ),
        rule(["scheduling.k8s.io"], ["priorityclasses"], READ),
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["apps"], ["replicasets", "statefulsets"], READ),
        rule(["storage.k8s.io"], ["storageclasses"], READ),
        rule(["coordination.k8s.io"], ["leases"], ALL),
    ],
    # Controllers act on every kind (Deployments, GC, namespace deletion, PV binding): all resources.
    "system:kube-controller-manager": [rule(["*"], ["*"], ["*"])],
    # `kfab provisioner nfs|iscsi` on storage hosts (kube's system:persistent-volume-provisioner, plus its
    # StorageClass, volume expansion, and the iSCSI CHAP Secret it puts next to each claim).
    "system:persistent-volume-provisioner": [
        rule([""], ["persistentvolumes"], READ + ["create", "delete", "patch"]),
        rule([""], ["persistentvolumeclaims"], READ + ["update", "patch"]),
        rule([""], ["persistentvolumeclaims/status"], ["update", "patch"]),
        rule([""], ["secrets"], ["get", "create", "update"]),
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["storage.k8s.io"], ["storageclasses"], READ + ["create"]),
    ],
    "system:node": [
        rule([""], ["nodes"], ["create", "get", "list", "watch", "patch", "update"]),
        rule([""], ["nodes/status", "pods/status"], ["patch", "update"]),
        rule([""], ["pods"], READ + ["create", "delete"]),
        rule([""], ["configmaps", "services", "endpoints", "persistentvolumes",
                    "persistentvolumeclaims", "serviceaccounts"], READ),
        # The agent fetches a pod's Secrets by name; listing every Secret of the cluster is not for a node.
        rule([""], ["secrets"], ["get"]),
        # Tokens for projected volumes; the TokenRequest handler allows only pods bound to the node itself.
        rule([""], ["serviceaccounts/token"], ["create"]),
        rule([""], ["events"], ["create", "patch", "update"]),
        rule(["coordination.k8s.io"], ["leases"], ["create", "delete", "get", "list", "patch", "update", "watch"]),
        rule(["storage.k8s.io"], ["storageclasses"], READ),
        rule(["discovery.k8s.io"], ["endpointslices"], READ),
    ],
    # `kfab proxy` also enforces NetworkPolicies (it reads the pods and namespaces they select) and announces
    # LoadBalancer pool addresses from the node holding each address's Lease (kube-system/kfab-lb-*): without
    # the Lease verbs no worker ever holds a pool address and it answers nowhere.
    "system:node-proxier": [
        rule([""], ["services", "endpoints", "nodes", "pods", "namespaces"], READ),
        rule(["discovery.k8s.io"], ["endpointslices"], READ),
        rule(["networking.k8s.io"], ["networkpolicies"], READ),
        rule(["coordination.k8s.io"], ["leases"], ["create", "get", "update"]),
        rule([""], ["events"], ["create", "patch", "update"]),
    ],
    # `kfab dns` (user system:kube-dns): reads what it serves; keeps its Service and its own EndpointSlice
    # (kfab/dns/register.py) — create, never update or delete a Service.
    "system:kube-dns": [
        rule([""], ["services", "endpoints", "pods"], READ),
        rule([""], ["services"], ["create"]),
        rule(["discovery.k8s.io"], ["endpointslices"], READ + ["create", "update", "delete"]),
    ],
    # `kfab vip` on control-plane hosts (user system:kfab-vip): the Lease of the API's virtual IP, as kube-vip's.
    "system:kfab-vip": [rule(["coordination.k8s.io"], ["leases"], ["get", "create", "update"])],
    "system:kfab-ingress": [
        rule([""], ["services", "endpoints", "secrets", "nodes"], READ),
        rule(["discovery.k8s.io"], ["endpointslices"], READ),
        rule(["networking.k8s.io"], ["ingresses", "ingressclasses"], READ),
        rule(["networking.k8s.io"], ["ingressclasses"], ["create"]),
        rule(["networking.k8s.io"], ["ingresses/status"], ["update", "patch"]),
        rule([""], ["events"], ["create", "patch", "update"]),
    ],
}

# binding name -> (cluster role, [(subject kind, subject name)])
CLUSTER_ROLE_BINDINGS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "cluster-admin": ("cluster-admin", [("Group", "system:masters")]),
    "system:discovery": ("system:discovery", [("Group", "system:authenticated")]),
    "system:basic-user": ("system:basic-user", [("Group", "system:authenticated")]),
    "system:public-info-viewer": ("system:public-info-viewer", [("Group", "system:authenticated")]),
    "system:kube-scheduler": ("system:kube-scheduler", [("User", "system:kube-scheduler")]),
    "system:kube-controller-manager": ("system:kube-controller-manager", [("User", "system:kube-controller-manager")]),
    "kfab:storage-provisioners": ("system:persistent-volume-provisioner", [("Group", "system:kfab-provisioners")]),
    # Kubernetes authorizes kubelets with its Node authorizer instead; kfab has none, so RBAC grants it.
    "system:node": ("system:node", [("Group", "system:nodes")]),
    "system:node-proxier": ("system:node-proxier", [("User", "system:kube-proxy")]),
    "system:kube-dns": ("system:kube-dns", [("User", "system:kube-dns")]),
    "system:kfab-ingress": ("system:kfab-ingress", [("User", "system:kfab-ingress")]),
    "system:kfab-vip": ("system:kfab-vip", [("User", "system:kfab-vip")]),
}
