"""batch/v1 rules: Job and CronJob (pkg/apis/batch/validation)."""

from __future__ import annotations

import copy

from kfab.objects.cron import schedule_problem, time_zone_problem
from kfab.objects.defaults.batch import CONTROLLER_UID_LABEL
from kfab.objects.errors import Cause
from kfab.objects.validation.field import child, immutable, invalid, nonnegative, not_supported, required
from kfab.objects.validation.meta import (as_dict, as_list, as_str, selector_is_empty, selector_matches,
                                          validate_annotations, validate_label_selector, validate_labels)
from kfab.objects.validation.pod import validate_pod_spec

COMPLETION_MODES = ("NonIndexed", "Indexed")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
POD_FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
EXIT_CODE_OPERATORS = ("In", "NotIn")
MAX_PARALLELISM_INDEXED = 100_000
MAX_COMPLETIONS_INDEXED = 100_000
CRONJOB_NAME_MAX = 52  # a Job's name is <cronjob>-<minutes since epoch, 11 digits>, and must stay a label value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_pod_failure_policy(policy: object, spec: dict, path: str) -> list[Cause]:
    policy = as_dict(policy)
    causes = []
    restart = as_dict(as_dict(spec.get("template")).get("spec")).get("restartPolicy")
    if restart != "Never":
        causes.append(invalid(child(path.rsplit(".", 1)[0], "template", "spec", "restartPolicy"), restart,
                              'only "Never" is supported when podFailurePolicy is specified'))
    rules = as_list(policy.get("rules"))
    if len(rules) > 20:
        causes.append(invalid(child(path, "rules"), len(rules), "must have at most 20 items"))
    for i, rule in enumerate(rules):
        rule = as_dict(rule)
        here = child(path, "rules", i)
        action = rule.get("action")
        if action not in POD_FAILURE_ACTIONS:
            causes.append(not_supported(child(here, "action"), action, POD_FAILURE_ACTIONS))
        on_codes, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if on_codes is not None and on_conditions is not None:
            causes.append(invalid(here, "", "specifying both OnExitCodes and OnPodConditions is not supported"))
        elif on_codes is None and on_conditions is None:
            causes.append(invalid(here, "", "specifying one of OnExitCodes and OnPodConditions is required"))
        if on_codes is not None:
            causes += _validate_on_exit_codes(as_dict(on_codes), child(here, "onExitCodes"))
        for j, pattern in enumerate(as_list(on_conditions)):
            pattern = as_dict(pattern)
            status = pattern.get("status")
            if status not in ("True", "False", "Unknown"):
                causes.append(not_supported(child(here, "onPodConditions", j, "status"), status,
                                            ["True", "False", "Unknown"]))
            if not as_str(pattern.get("type")):
                causes.append(required(child(here, "onPodConditions", j, "type")))
    return causes


def _validate_on_exit_codes(codes: dict, path: str) -> list[Cause]:
    causes = []
    operator, values = codes.get("operator"), as_list(codes.get("values"))
    if operator not in EXIT_CODE_OPERATORS:
        causes.append(not_supported(child(path, "operator"), operator, EXIT_CODE_OPERATORS))
    if not values:
        causes.append(invalid(child(path, "values"), values, "at least one value is required"))
    if len(values) > 255:
        causes.append(invalid(child(path, "values"), len(values), "must have at most 255 items"))
    previous = None
    for k, value in enumerate(values):
        here = child(path, "values", k)
        if operator == "In" and value == 0:
            causes.append(invalid(here, value, "must not be 0 for the In operator"))
        if previous is not None and _is_int(value) and _is_int(previous):
            if value == previous:
                causes.append(invalid(here, value, "must be unique"))
            elif value < previous:
                causes.append(invalid(here, value, "must be ordered"))
        previous = value
    container = codes.get("containerName")
    if container is not None and not as_str(container):
        causes.append(invalid(child(path, "containerName"), container, "must not be empty"))
    return causes


def validate_job_spec(spec: dict, path: str = "spec", in_template: bool = False) -> list[Cause]:
    causes = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        causes += nonnegative(child(path, key), spec.get(key))
    deadline = spec.get("activeDeadlineSeconds")
    if _is_int(deadline) and deadline == 0:
        causes.append(invalid(child(path, "activeDeadlineSeconds"), deadline, "must be greater than 0"))
    mode = spec.get("completionMode")
    if mode is not None and mode not in COMPLETION_MODES:
        causes.append(not_supported(child(path, "completionMode"), mode, COMPLETION_MODES))
    if mode == "Indexed":
        completions, parallelism = spec.get("completions"), spec.get("parallelism")
        if completions is None:
            causes.append(required(child(path, "completions"), "when completion mode is Indexed"))
        elif _is_int(completions) and completions > MAX_COMPLETIONS_INDEXED:
            causes.append(invalid(child(path, "completions"), completions,
                                  f"must be less than or equal to {MAX_COMPLETIONS_INDEXED} "
                                  f"when completion mode is Indexed"))
        if _is_int(parallelism) and parallelism > MAX_PARALLELISM_INDEXED:
            causes.append(invalid(child(path, "parallelism"), parallelism,
                                  f"must be less than or equal to {MAX_PARALLELISM_INDEXED} "
                                  f"when completion mode is Indexed"))
    if spec.get("podFailurePolicy") is not None:
        causes += _validate_pod_failure_policy(spec["podFailurePolicy"], spec, child(path, "podFailurePolicy"))
    selector = spec.get("selector")
    if selector is not None:
        causes += validate_label_selector(selector, child(path, "selector"))
    elif not in_template:
        causes.append(required(child(path, "selector")))
    template = as_dict(spec.get("template"))
    meta = as_dict(template.get("metadata"))
    labels = meta.get("labels")
    if selector is not None and not selector_is_empty(selector) and not selector_matches(selector, labels):
        causes.append(invalid(child(path, "template", "metadata", "labels"), as_dict(labels),
                              "`selector` does not match template `labels`"))
    causes += validate_labels(labels, child(path, "template", "metadata", "labels"))
    causes += validate_annotations(meta.get("annotations"), child(path, "template", "metadata", "annotations"))
    pod_spec = as_dict(template.get("spec"))
    causes += validate_pod_spec(pod_spec, child(path, "template", "spec"))
    restart = pod_spec.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(not_supported(child(path, "template", "spec", "restartPolicy"), restart or "",
                                    ["OnFailure", "Never"]))
    return causes


def validate_job(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = validate_job_spec(spec)
    if spec.get("manualSelector") is not True:
        # The generated selector: a selector the user wrote without manualSelector is refused here.
        uid = as_dict(obj.get("metadata")).get("uid")
        match = as_dict(as_dict(spec.get("selector")).get("matchLabels"))
        if uid and match.get(CONTROLLER_UID_LABEL) != uid:
            causes.append(invalid("spec.selector", as_dict(spec.get("selector")), "`selector` not auto-generated"))
    return causes


def validate_job_update(obj: dict, old: dict) -> list[Cause]:
    """What may change in a Job: parallelism, activeDeadlineSeconds (not added to a started Job), suspend,
    ttlSecondsAfterFinished, backoffLimit; completions only with parallelism in an Indexed Job (elastic)."""
    spec, old_spec = as_dict(obj.get("spec")), as_dict(old.get("spec"))
    causes = []
    for key in ("selector", "completionMode", "podFailurePolicy", "manualSelector", "backoffLimitPerIndex"):
        if spec.get(key) != old_spec.get(key):
            causes.append(immutable(child("spec", key), spec.get(key)))
    completions = spec.get("completions")
    if completions != old_spec.get("completions"):
        elastic = spec.get("completionMode") == "Indexed" and completions == spec.get("parallelism")
        if not elastic:
            causes.append(immutable("spec.completions", completions))
    template, old_template = copy.deepcopy(as_dict(spec.get("template"))), as_dict(old_spec.get("template"))
    if template != old_template:
        suspended_never_started = old_spec.get("suspend") is True and not as_dict(old.get("status")).get("startTime")
        if not suspended_never_started or _scheduling_only_change(template, old_template) is False:
            causes.append(immutable("spec.template", template))
    return causes


def _scheduling_only_change(new: dict, old: dict) -> bool:
    """A suspended Job that never started may change its pods' scheduling directives, labels and annotations."""
    new, old = copy.deepcopy(new), copy.deepcopy(old)
    for t in (new, old):
        t.setdefault("metadata", {})
        for key in ("labels", "annotations"):
            as_dict(t["metadata"]).pop(key, None)
        spec = as_dict(t.get("spec"))
        for key in ("nodeSelector", "tolerations", "affinity", "schedulingGates"):
            spec.pop(key, None)
    return new == old


def validate_cron_job(obj: dict) -> list[Cause]:
    spec = as_dict(obj.get("spec"))
    causes = []
    name = as_str(as_dict(obj.get("metadata")).get("name"))
    if len(name) > CRONJOB_NAME_MAX:
        causes.append(invalid("metadata.name", name, f"must be no more than {CRONJOB_NAME_MAX} characters"))
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(required("spec.schedule"))
    else:
        problem = schedule_problem(as_str(schedule))
        if problem:
            causes.append(invalid("spec.schedule", schedule, problem))
        if "TZ" in as_str(schedule):
            causes.append(invalid("spec.schedule", schedule,
                                  "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    zone = spec.get("timeZone")
    if zone is not None:
        if zone == "":
            causes.append(invalid("spec.timeZone", zone, "timeZone must be nil or non-empty string"))
        elif as_str(zone).lower() == "local":
            causes.append(invalid("spec.timeZone", zone, "timeZone must be an explicit time zone as defined in "
                                                        "https://www.iana.org/time-zones"))
        else:
            problem = time_zone_problem(as_str(zone))
            if problem:
                causes.append(invalid("spec.timeZone", zone, problem))
    policy = spec.get("concurrencyPolicy")
    if policy not in CONCURRENCY_POLICIES:
        causes.append(not_supported("spec.concurrencyPolicy", policy or "", CONCURRENCY_POLICIES))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += nonnegative(child("spec", key), spec.get(key))
    template = as_dict(spec.get("jobTemplate"))
    template_meta = as_dict(template.get("metadata"))
    causes += validate_labels(template_meta.get("labels"), "spec.jobTemplate.metadata.labels")
    causes += validate_annotations(template_meta.get("annotations"), "spec.jobTemplate.metadata.annotations")
    job_spec = as_dict(template.get("spec"))
    causes += validate_job_spec(job_spec, "spec.jobTemplate.spec", in_template=True)
    if job_spec.get("selector") is not None:
        causes.append(invalid("spec.jobTemplate.spec.selector", job_spec["selector"],
                              "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        causes.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
    return causes
