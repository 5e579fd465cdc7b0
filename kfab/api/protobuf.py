"""Request bodies in Kubernetes' protobuf encoding, decoded to the JSON-shaped dicts the rest of kfab uses.

kubectl's typed clients (`kubectl create namespace|configmap|secret|deployment|service|role...`,
`kubectl auth can-i`) send `application/vnd.kubernetes.protobuf` and accept JSON back; they do not fall back
to JSON on a 415, so the API server has to read them. The envelope is `k8s\\x00` + runtime.Unknown
{typeMeta{apiVersion, kind}, raw}; `raw` is the object's message. Field numbers below are those of the
Kubernetes .proto definitions (k8s.io/api, k8s.io/apimachinery) for the kinds those commands send; a field
kfab does not know is a clear 415 rather than a silently dropped value.
"""

from __future__ import annotations

import base64
import datetime

from kfab.objects.errors import APIError, bad_request

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

# Field types: "string", "bytes" (base64 in JSON), "int", "bool", "Time", "IntOrString", "Quantity",
# "map" (string -> string), "mapbytes" (string -> bytes), "mapquantity" (string -> Quantity),
# a message name, and "[]"-prefixed repeated forms.


def _object(spec: str | None, status: str | None = None) -> dict:
    fields = {1: ("metadata", "ObjectMeta")}
    if spec:
        fields[2] = ("spec", spec)
    if status:
        fields[3] = ("status", status)
    return fields


MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    # k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                   4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
                   7: ("generation", "int"), 8: ("creationTimestamp", "Time"), 9: ("deletionTimestamp", "Time"),
                   10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "map"), 12: ("annotations", "map"),
                   13: ("ownerReferences", "[]OwnerReference"), 14: ("finalizers", "[]string"),
                   17: ("managedFields", "[]ManagedFieldsEntry")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "ManagedFieldsEntry": {1: ("manager", "string"), 2: ("operation", "string"), 3: ("apiVersion", "string"),
                           4: ("time", "Time"), 6: ("fieldsType", "string"), 7: ("fieldsV1", "FieldsV1"),
                           8: ("subresource", "string")},
    "LabelSelector": {1: ("matchLabels", "map"), 2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    # core/v1
    "Namespace": _object("NamespaceSpec", "NamespaceStatus"),
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map"), 3: ("binaryData", "mapbytes"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "mapbytes"), 3: ("type", "string"),
               4: ("stringData", "map"), 5: ("immutable", "bool")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "[]ObjectReference"),
                       3: ("imagePullSecrets", "[]LocalObjectReference"),
                       4: ("automountServiceAccountToken", "bool")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                        4: ("uid", "string"), 5: ("apiVersion", "string"), 6: ("resourceVersion", "string"),
                        7: ("fieldPath", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Service": _object("ServiceSpec", "ServiceStatus"),
    "ServiceSpec": {1: ("ports", "[]ServicePort"), 2: ("selector", "map"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "[]string"), 7: ("sessionAffinity", "string"),
                    8: ("loadBalancerIP", "string"), 9: ("loadBalancerSourceRanges", "[]string"),
                    10: ("externalName", "string"), 11: ("externalTrafficPolicy", "string"),
                    12: ("healthCheckNodePort", "int"), 13: ("publishNotReadyAddresses", "bool"),
                    17: ("ipFamilyPolicy", "string"), 18: ("clusterIPs", "[]string"),
                    19: ("ipFamilies", "[]string"), 20: ("allocateLoadBalancerNodePorts", "bool"),
                    21: ("loadBalancerClass", "string"), 22: ("internalTrafficPolicy", "string"),
                    23: ("trafficDistribution", "string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "IntOrString"), 5: ("nodePort", "int"), 6: ("appProtocol", "string")},
    "ServiceStatus": {1: ("loadBalancer", "LoadBalancerStatus")},
    "LoadBalancerStatus": {1: ("ingress", "[]LoadBalancerIngress")},
    "LoadBalancerIngress": {1: ("ip", "string"), 2: ("hostname", "string")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {1: ("volumes", "[]Volume"), 2: ("containers", "[]Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int"), 5: ("activeDeadlineSeconds", "int"),
                6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map"), 8: ("serviceAccountName", "string"),
                9: ("serviceAccount", "string"), 10: ("nodeName", "string"), 11: ("hostNetwork", "bool"),
                12: ("hostPID", "bool"), 13: ("hostIPC", "bool"), 14: ("securityContext", "PodSecurityContext"),
                15: ("imagePullSecrets", "[]LocalObjectReference"), 16: ("hostname", "string"),
                17: ("subdomain", "string"), 19: ("schedulerName", "string"), 20: ("initContainers", "[]Container"),
                21: ("automountServiceAccountToken", "bool"), 24: ("priorityClassName", "string"),
                25: ("priority", "int"), 30: ("enableServiceLinks", "bool")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"),
                  4: ("args", "[]string"), 5: ("workingDir", "string"), 6: ("ports", "[]ContainerPort"),
                  7: ("env", "[]EnvVar"), 8: ("resources", "ResourceRequirements"),
                  9: ("volumeMounts", "[]VolumeMount"), 13: ("terminationMessagePath", "string"),
                  14: ("imagePullPolicy", "string"), 16: ("stdin", "bool"), 17: ("stdinOnce", "bool"),
                  18: ("tty", "bool"), 20: ("terminationMessagePolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "mapquantity"), 2: ("requests", "mapquantity")},
    "VolumeMount": {1: ("name", "string"), 2: ("readOnly", "bool"), 3: ("mountPath", "string"),
                    4: ("subPath", "string")},
    "Volume": {1: ("name", "string")},
    # apps/v1
    "Deployment": _object("DeploymentSpec", "DeploymentStatus"),
    "DeploymentSpec": {1: ("replicas", "int"), 2: ("selector", "LabelSelector"), 3: ("template", "PodTemplateSpec"),
                       4: ("strategy", "DeploymentStrategy"), 5: ("minReadySeconds", "int"),
                       6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"),
                       9: ("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString"), 2: ("maxSurge", "IntOrString")},
    "DeploymentStatus": {1: ("observedGeneration", "int"), 2: ("replicas", "int")},
    # batch/v1: `kubectl create job|cronjob`, `kubectl create job --from=cronjob/X` (a defaulted jobTemplate)
    "Job": _object("JobSpec", "JobStatus"),
    "JobSpec": {1: ("parallelism", "int"), 2: ("completions", "int"), 3: ("activeDeadlineSeconds", "int"),
                4: ("selector", "LabelSelector"), 5: ("manualSelector", "bool"), 6: ("template", "PodTemplateSpec"),
                7: ("backoffLimit", "int"), 8: ("ttlSecondsAfterFinished", "int"), 9: ("completionMode", "string"),
                10: ("suspend", "bool"), 12: ("backoffLimitPerIndex", "int"), 13: ("maxFailedIndexes", "int"),
                14: ("podReplacementPolicy", "string"), 15: ("managedBy", "string")},
    "JobStatus": {2: ("startTime", "Time"), 3: ("completionTime", "Time"), 4: ("active", "int"),
                  5: ("succeeded", "int"), 6: ("failed", "int")},
    "CronJob": _object("CronJobSpec", "CronJobStatus"),
    "CronJobSpec": {1: ("schedule", "string"), 2: ("startingDeadlineSeconds", "int"),
                    3: ("concurrencyPolicy", "string"), 4: ("suspend", "bool"), 5: ("jobTemplate", "JobTemplateSpec"),
                    6: ("successfulJobsHistoryLimit", "int"), 7: ("failedJobsHistoryLimit", "int"),
                    8: ("timeZone", "string")},
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "CronJobStatus": {4: ("lastScheduleTime", "Time"), 5: ("lastSuccessfulTime", "Time")},
    "PodSecurityContext": {2: ("runAsUser", "int"), 3: ("runAsNonRoot", "bool"), 4: ("supplementalGroups", "[]int"),
                           5: ("fsGroup", "int"), 6: ("runAsGroup", "int")},
    # rbac.authorization.k8s.io/v1
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule"),
                    3: ("aggregationRule", "AggregationRule")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[]LabelSelector")},
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
                   4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"),
                4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    # authorization.k8s.io/v1
    "SelfSubjectAccessReview": _object("SelfSubjectAccessReviewSpec", "SubjectAccessReviewStatus"),
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                    2: ("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                           4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
                           7: ("name", "string")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SubjectAccessReviewStatus": {1: ("allowed", "bool"), 2: ("reason", "string"), 3: ("evaluationError", "string"),
                                  4: ("denied", "bool")},
    "SelfSubjectRulesReview": _object("SelfSubjectRulesReviewSpec", "SubjectRulesReviewStatus"),
    "SubjectRulesReviewStatus": {},
    # authentication.k8s.io/v1
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta"), 2: ("status", "SelfSubjectReviewStatus")},
    "SelfSubjectReviewStatus": {},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    # meta/v1 DeleteOptions: kubectl drain's typed client sends it as protobuf with each pod DELETE
    "DeleteOptions": {1: ("gracePeriodSeconds", "int"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "string"), 5: ("dryRun", "[]string"),
                      6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool")},
    "Preconditions": {1: ("uid", "string"), 2: ("resourceVersion", "string")},
    # policy/v1 Eviction: kubectl drain's typed client POSTs it to pods/<name>/eviction
    "Eviction": {1: ("metadata", "ObjectMeta"), 2: ("deleteOptions", "DeleteOptions")},
    # policy/v1 PodDisruptionBudget: `kubectl create pdb`
    "PodDisruptionBudget": _object("PodDisruptionBudgetSpec", "PodDisruptionBudgetStatus"),
    "PodDisruptionBudgetSpec": {1: ("minAvailable", "IntOrString"), 2: ("selector", "LabelSelector"),
                                3: ("maxUnavailable", "IntOrString"), 4: ("unhealthyPodEvictionPolicy", "string")},
    "PodDisruptionBudgetStatus": {},
    # autoscaling/v2 HorizontalPodAutoscaler: `kubectl autoscale`
    "HorizontalPodAutoscaler": _object("HorizontalPodAutoscalerSpec", "HorizontalPodAutoscalerStatus"),
    "HorizontalPodAutoscalerSpec": {1: ("scaleTargetRef", "CrossVersionObjectReference"), 2: ("minReplicas", "int"),
                                    3: ("maxReplicas", "int"), 4: ("metrics", "[]MetricSpec"),
                                    5: ("behavior", "HorizontalPodAutoscalerBehavior")},
    "CrossVersionObjectReference": {1: ("kind", "string"), 2: ("name", "string"), 3: ("apiVersion", "string")},
    "MetricSpec": {1: ("type", "string"), 4: ("resource", "ResourceMetricSource"),
                   7: ("containerResource", "ContainerResourceMetricSource")},
    "ResourceMetricSource": {1: ("name", "string"), 2: ("target", "MetricTarget")},
    "ContainerResourceMetricSource": {1: ("name", "string"), 2: ("target", "MetricTarget"), 3: ("container", "string")},
    "MetricTarget": {1: ("type", "string"), 2: ("value", "Quantity"), 3: ("averageValue", "Quantity"),
                     4: ("averageUtilization", "int")},
    "HorizontalPodAutoscalerBehavior": {1: ("scaleUp", "HPAScalingRules"), 2: ("scaleDown", "HPAScalingRules")},
    "HPAScalingRules": {1: ("selectPolicy", "string"), 2: ("policies", "[]HPAScalingPolicy"),
                        3: ("stabilizationWindowSeconds", "int")},
    "HPAScalingPolicy": {1: ("type", "string"), 2: ("value", "int"), 3: ("periodSeconds", "int")},
    "HorizontalPodAutoscalerStatus": {},
    # autoscaling/v1 HorizontalPodAutoscaler: the same objects with v1's one CPU target (kfab.objects.hpa_versions)
    "HorizontalPodAutoscalerV1": _object("HorizontalPodAutoscalerSpecV1", "HorizontalPodAutoscalerStatus"),
    "HorizontalPodAutoscalerSpecV1": {1: ("scaleTargetRef", "CrossVersionObjectReference"), 2: ("minReplicas", "int"),
                                      3: ("maxReplicas", "int"), 4: ("targetCPUUtilizationPercentage", "int")},
    # authentication/v1 TokenRequest: `kubectl create token` POSTs it to serviceaccounts/<name>/token
    "TokenRequest": _object("TokenRequestSpec", "TokenRequestStatus"),
    "TokenRequestSpec": {1: ("audiences", "[]string"), 3: ("boundObjectRef", "BoundObjectReference"),
                         4: ("expirationSeconds", "int")},
    "BoundObjectReference": {1: ("kind", "string"), 2: ("apiVersion", "string"), 3: ("name", "string"),
                             4: ("uid", "string")},
    "TokenRequestStatus": {1: ("token", "string"), 2: ("expirationTimestamp", "Time")},
    # `kubectl create quota` and `kubectl create priorityclass`
    "ResourceQuota": _object("ResourceQuotaSpec", "ResourceQuotaStatus"),
    "ResourceQuotaSpec": {1: ("hard", "mapquantity"), 2: ("scopes", "[]string"), 3: ("scopeSelector", "ScopeSelector")},
    "ScopeSelector": {1: ("matchExpressions", "[]ScopedResourceSelectorRequirement")},
    "ScopedResourceSelectorRequirement": {1: ("scopeName", "string"), 2: ("operator", "string"),
                                          3: ("values", "[]string")},
    "ResourceQuotaStatus": {1: ("hard", "mapquantity"), 2: ("used", "mapquantity")},
    "PriorityClass": {1: ("metadata", "ObjectMeta"), 2: ("value", "int"), 3: ("globalDefault", "bool"),
                      4: ("description", "string"), 5: ("preemptionPolicy", "string")},
    # networking/v1 Ingress: `kubectl create ingress`. IngressRuleValue is embedded inline (name ""): its
    # `http` sits on the rule in JSON.
    "Ingress": _object("IngressSpec", "IngressStatus"),
    "IngressSpec": {1: ("defaultBackend", "IngressBackend"), 2: ("tls", "[]IngressTLS"), 3: ("rules", "[]IngressRule"),
                    4: ("ingressClassName", "string")},
    "IngressBackend": {3: ("resource", "TypedLocalObjectReference"), 4: ("service", "IngressServiceBackend")},
    "TypedLocalObjectReference": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "IngressServiceBackend": {1: ("name", "string"), 2: ("port", "ServiceBackendPort")},
    "ServiceBackendPort": {1: ("name", "string"), 2: ("number", "int")},
    "IngressTLS": {1: ("hosts", "[]string"), 2: ("secretName", "string")},
    "IngressRule": {1: ("host", "string"), 2: ("", "IngressRuleValue")},
    "IngressRuleValue": {1: ("http", "HTTPIngressRuleValue")},
    "HTTPIngressRuleValue": {1: ("paths", "[]HTTPIngressPath")},
    "HTTPIngressPath": {1: ("path", "string"), 2: ("backend", "IngressBackend"), 3: ("pathType", "string")},
    "IngressStatus": {},
}

# Go pointer fields: sent only when set, so a zero there is a real value. Every other scalar is sent even
# when it holds Go's zero value ("" / 0 / false), which JSON would have omitted: those are dropped so that
# defaulting sees "unset", as it does in kube-apiserver.
POINTERS = {
    ("ObjectMeta", "deletionGracePeriodSeconds"), ("OwnerReference", "controller"),
    ("OwnerReference", "blockOwnerDeletion"), ("ConfigMap", "immutable"), ("Secret", "immutable"),
    ("ServiceAccount", "automountServiceAccountToken"), ("ServiceSpec", "ipFamilyPolicy"),
    ("ServiceSpec", "allocateLoadBalancerNodePorts"), ("ServiceSpec", "loadBalancerClass"),
    ("ServiceSpec", "internalTrafficPolicy"), ("ServiceSpec", "trafficDistribution"),
    ("ServicePort", "appProtocol"), ("PodSpec", "terminationGracePeriodSeconds"),
    ("PodSpec", "activeDeadlineSeconds"), ("PodSpec", "automountServiceAccountToken"), ("PodSpec", "priority"),
    ("PodSpec", "enableServiceLinks"), ("DeploymentSpec", "replicas"), ("DeploymentSpec", "revisionHistoryLimit"),
    ("DeploymentSpec", "progressDeadlineSeconds"), ("DeleteOptions", "gracePeriodSeconds"),
    ("DeleteOptions", "orphanDependents"),
    ("JobSpec", "parallelism"), ("JobSpec", "completions"), ("JobSpec", "activeDeadlineSeconds"),
    ("JobSpec", "manualSelector"), ("JobSpec", "backoffLimit"), ("JobSpec", "ttlSecondsAfterFinished"),
    ("JobSpec", "suspend"), ("JobSpec", "backoffLimitPerIndex"), ("JobSpec", "maxFailedIndexes"),
    ("CronJobSpec", "startingDeadlineSeconds"), ("CronJobSpec", "suspend"),
    ("CronJobSpec", "successfulJobsHistoryLimit"), ("CronJobSpec", "failedJobsHistoryLimit"),
    ("PodSecurityContext", "runAsUser"), ("PodSecurityContext", "runAsNonRoot"), ("PodSecurityContext", "fsGroup"),
    ("PodSecurityContext", "runAsGroup"),
    ("HorizontalPodAutoscalerSpec", "minReplicas"), ("MetricTarget", "averageUtilization"),
    ("HorizontalPodAutoscalerSpecV1", "minReplicas"),
    ("HorizontalPodAutoscalerSpecV1", "targetCPUUtilizationPercentage"),
    ("HPAScalingRules", "stabilizationWindowSeconds"), ("HPAScalingRules", "selectPolicy"),
    ("IngressSpec", "ingressClassName"), ("HTTPIngressPath", "pathType"), ("TypedLocalObjectReference", "apiGroup"),
}
# Status is the server's to set (reset on create); kfab reads what it knows of it and skips the rest.
LENIENT = {"HorizontalPodAutoscalerStatus", "PodDisruptionBudgetStatus", "NamespaceStatus", "ServiceStatus",
           "DeploymentStatus", "JobStatus", "CronJobStatus", "SubjectAccessReviewStatus", "SubjectRulesReviewStatus",
           "SelfSubjectReviewStatus", "IngressStatus"}

# kind (in runtime.Unknown's typeMeta) -> message
KINDS = {k: k for k in ("Namespace", "ConfigMap", "Secret", "ServiceAccount", "Service", "Deployment", "Role",
                        "ClusterRole", "RoleBinding", "ClusterRoleBinding", "SelfSubjectAccessReview",
                        "SelfSubjectRulesReview", "SelfSubjectReview", "DeleteOptions",
                        "Eviction", "PodDisruptionBudget", "TokenRequest", "Job", "CronJob", "ResourceQuota",
                        "PriorityClass", "HorizontalPodAutoscaler", "Ingress")}
# a kind whose versions differ in shape: (apiVersion, kind) -> message
VERSIONED_KINDS = {("autoscaling/v1", "HorizontalPodAutoscaler"): "HorizontalPodAutoscalerV1"}


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def varint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ValueError("varint too long")

    def fields(self):
        """(number, wire type, value): value is an int for varints/fixed, bytes for length-delimited."""
        while self.pos < len(self.data):
            key = self.varint()
            number, wire = key >> 3, key & 7
            if wire == 0:
                yield number, wire, self.varint()
            elif wire == 2:
                length = self.varint()
                if self.pos + length > len(self.data):
                    raise ValueError("truncated field")
                yield number, wire, self.data[self.pos:self.pos + length]
                self.pos += length
            elif wire == 1:
                yield number, wire, int.from_bytes(self.data[self.pos:self.pos + 8], "little")
                self.pos += 8
            elif wire == 5:
                yield number, wire, int.from_bytes(self.data[self.pos:self.pos + 4], "little")
                self.pos += 4
            else:
                raise ValueError(f"unsupported wire type {wire}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _entry(data: bytes) -> tuple[str, bytes | str]:
    key, value = "", b""
    for number, _, v in _Reader(data).fields():
        if number == 1:
            key = v.decode()
        elif number == 2:
            value = v
    return key, value


def _time(data: bytes) -> str | None:
    seconds = 0
    for number, _, v in _Reader(data).fields():
        if number == 1:
            seconds = _signed(v)
    if seconds == 0:
        return None  # Go's zero Time: unset
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(data: bytes):
    kind, int_val, str_val = 0, 0, ""
    for number, _, v in _Reader(data).fields():
        if number == 1:
            kind = v
        elif number == 2:
            int_val = _signed(v)
        elif number == 3:
            str_val = v.decode()
    return str_val if kind == 1 else int_val


def _quantity(data: bytes) -> str:
    for number, _, v in _Reader(data).fields():
        if number == 1:
            return v.decode()
    return "0"


def _scalar(type_: str, wire: int, value):
    if type_ == "string":
        return value.decode()
    if type_ == "bytes":
        return base64.b64encode(value).decode()
    if type_ == "int":
        return _signed(value)
    if type_ == "bool":
        return bool(value)
    if type_ == "Time":
        return _time(value)
    if type_ == "IntOrString":
        return _int_or_string(value)
    if type_ == "Quantity":
        return _quantity(value)
    if type_ == "FieldsV1":
        import json
        for number, _, v in _Reader(value).fields():
            if number == 1:
                return json.loads(v)
        return {}
    return decode_message(type_, value)


def decode_message(message: str, data: bytes) -> dict:
    fields = MESSAGES[message]
    out: dict = {}
    for number, wire, value in _Reader(data).fields():
        if number not in fields:
            if message in LENIENT:
                continue
            raise APIError(415, "UnsupportedMediaType", f"kfab cannot read field {number} of {message} in a protobuf "
                           f"body; send this request as application/json")
        name, type_ = fields[number]
        if type_ in ("map", "mapbytes", "mapquantity"):
            key, raw = _entry(value)
            converted = {"map": lambda b: b.decode(), "mapbytes": lambda b: base64.b64encode(b).decode(),
                         "mapquantity": _quantity}[type_](raw)
            out.setdefault(name, {})[key] = converted
        elif type_.startswith("[]"):
            item_type = type_[2:]
            if item_type == "string" and wire == 2:
                out.setdefault(name, []).append(value.decode())
            else:
                out.setdefault(name, []).append(_scalar(item_type, wire, value))
        else:
            converted = _scalar(type_, wire, value)
            if not name:  # an embedded struct whose fields JSON inlines (IngressRule's IngressRuleValue)
                out.update(converted)
                continue
            if converted in ("", 0, False, None) and (message, name) not in POINTERS and type_ != "IntOrString":
                continue
            out[name] = converted
    return out


def decode(body: bytes) -> dict:
    """A protobuf request body -> the object as JSON would have carried it. 400 when malformed."""
    if not body.startswith(MAGIC):
        raise bad_request("the protobuf body does not start with the Kubernetes envelope (k8s\\x00)")
    try:
        api_version = kind = ""
        raw = b""
        for number, _, value in _Reader(body[len(MAGIC):]).fields():
            if number == 1:
                for n, _, v in _Reader(value).fields():
                    if n == 1:
                        api_version = v.decode()
                    elif n == 2:
                        kind = v.decode()
            elif number == 2:
                raw = value
        message = VERSIONED_KINDS.get((api_version, kind)) or KINDS.get(kind)
        if message is None:
            raise APIError(415, "UnsupportedMediaType", f"kfab reads {kind or 'this kind'} only as JSON; send "
                           "application/json")
        obj = decode_message(message, raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"couldn't decode the protobuf body: {e}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
