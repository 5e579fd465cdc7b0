"""batch/v1 defaults (pkg/apis/batch/v1/defaults.go) and the Job's generated selector (the Job strategy's
generateSelector, which kube-apiserver runs on create once the uid exists)."""

from __future__ import annotations

from kfab.objects.defaults.pod import _d, _items, default_pod_template
from kfab.objects.meta import meta_of

# k8s.io/api/batch/v1 label keys; the unprefixed ones are the legacy spellings kube still writes too.
JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"


def default_job(obj: dict) -> None:
    spec = _d(obj, "spec")
    default_job_spec(spec)
    labels = (_d(spec, "template").get("metadata") or {}).get("labels")
    meta = _d(obj, "metadata")
    if labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def default_job_spec(spec: dict) -> None:
    """SetDefaults_Job's spec part (a CronJob's jobTemplate gets only the pod template defaults, as in kube)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2**31 - 1 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in _items(policy.get("rules")):
            for pattern in _items(rule.get("onPodConditions")):
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if isinstance(policy, dict) else "TerminatingOrFailed"
    default_pod_template(spec.get("template"))


def generate_job_selector(obj: dict) -> None:
    """Unless spec.manualSelector: the job-name and controller-uid labels on the pod template (kept when the
    user set them: validation then reports a mismatch), and a selector on the uid label."""
    spec = _d(obj, "spec")
    if spec.get("manualSelector") is True:
        return
    meta = meta_of(obj)
    template_meta = _d(_d(spec, "template"), "metadata")
    labels = _d(template_meta, "labels")
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, meta.get("name", ""))
    for key in CONTROLLER_UID_LABELS:
        labels.setdefault(key, meta.get("uid", ""))
    selector = _d(spec, "selector")
    _d(selector, "matchLabels").setdefault(CONTROLLER_UID_LABEL, meta.get("uid", ""))


def default_cron_job(obj: dict) -> None:
    spec = _d(obj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_spec = _d(_d(spec, "jobTemplate"), "spec")
    default_pod_template(job_spec.get("template"))
