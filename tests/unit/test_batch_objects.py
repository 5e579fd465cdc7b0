"""batch/v1 objects as kube-apiserver treats them: defaults, the generated selector, validation messages and
`kubectl get` cells (kfab.objects.defaults.batch, validation.batch, columns_batch)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kfab.objects.defaults import apply_defaults
from kfab.objects.registry import REGISTRY
from kfab.objects.tables import to_table
from kfab.objects.validation import validate_create, validate_update

JOB = REGISTRY.by_kind("batch/v1", "Job")
CRONJOB = REGISTRY.by_kind("batch/v1", "CronJob")
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)


def stamp(**delta) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec) -> dict:
    restart = spec.pop("restartPolicy", "Never")
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": "1234"},
            "spec": {"template": {"spec": {"restartPolicy": restart,
                                           "containers": [{"name": "pi", "image": "perl"}]}}, **spec}}


def created(obj: dict, rt=JOB) -> list[str]:
    apply_defaults(rt, obj, "CREATE")
    return [f"{c.field}: {c.message}" for c in validate_create(rt, obj)]


def test_job_defaults_and_generated_selector():
    obj = job()
    assert created(obj) == []
    spec = obj["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"], spec["podReplacementPolicy"]) == ("NonIndexed", False,
                                                                                        "TerminatingOrFailed")
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}}
    assert spec["template"]["metadata"]["labels"] == {"job-name": "pi", "batch.kubernetes.io/job-name": "pi",
                                                      "controller-uid": "1234",
                                                      "batch.kubernetes.io/controller-uid": "1234"}


def test_parallelism_alone_leaves_completions_unset():
    obj = job(parallelism=3)
    assert created(obj) == [] and "completions" not in obj["spec"]


def test_restart_policy_always_is_refused_with_kubes_message():
    assert created(job(restartPolicy="Always")) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"']


def test_pod_failure_policy_needs_restart_policy_never():
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0, 42]}}]}
    assert created(job(restartPolicy="OnFailure", podFailurePolicy=policy)) == [
        'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
        'podFailurePolicy is specified',
        "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"]


def test_indexed_job_needs_completions():
    assert created(job(completionMode="Indexed", parallelism=2)) == [
        "spec.completions: Required value: when completion mode is Indexed"]


def test_a_selector_without_manual_selector_must_select_the_generated_labels():
    [error] = created(job(selector={"matchLabels": {"app": "x"}}))
    assert error.startswith("spec.template.metadata.labels: Invalid value: ")
    assert error.endswith("`selector` does not match template `labels`")
    assert created(job(manualSelector=True, selector={"matchLabels": {"app": "x"}})) == [
        'spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`']


def test_job_template_is_immutable_but_parallelism_is_not():
    old = job()
    created(old)
    new = job()
    apply_defaults(JOB, new, "UPDATE")
    new["spec"].update(selector=old["spec"]["selector"], template=old["spec"]["template"], parallelism=5)
    assert validate_update(JOB, new, old) == []
    new["spec"]["template"] = dict(old["spec"]["template"], spec=dict(old["spec"]["template"]["spec"],
                                                                       restartPolicy="OnFailure"))
    assert [c.field for c in validate_update(JOB, new, old)] == ["spec.template"]


def cronjob(**spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup", "namespace": "default"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "b", "image": "busybox"}]}}}}, **spec}}


def test_cronjob_defaults():
    obj = cronjob()
    assert created(obj, CRONJOB) == []
    spec = obj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # the template is no Job: only pod defaults


def test_cronjob_schedule_time_zone_and_policy_errors():
    assert created(cronjob(schedule="61 * * * *", timeZone="Mars/Olympus", concurrencyPolicy="Sometimes"),
                   CRONJOB) == [
        'spec.schedule: Invalid value: "61 * * * *": [61 * * * *] is not acceptable, out of range',
        'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"']
    assert created(cronjob(schedule="TZ=UTC * * * * *"), CRONJOB)[-1] == (
        'spec.schedule: Invalid value: "TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
        'field instead')


def test_job_cells():
    obj = {"metadata": {"name": "pi", "creationTimestamp": stamp(minutes=5)},
           "spec": {"completions": 3, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
           "status": {"succeeded": 3, "startTime": stamp(minutes=5), "completionTime": stamp(minutes=4, seconds=20),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    table = to_table(JOB, [obj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name", "Status", "Completions", "Duration", "Age"]
    assert table["rows"][0]["cells"][:5] == ["pi", "Complete", "3/3", "40s", "5m"]
    running = dict(obj, spec={"parallelism": 4}, status={"startTime": stamp(seconds=30)})
    assert to_table(JOB, [running], now=NOW)["rows"][0]["cells"][1:4] == ["Running", "0/1 of 4", "30s"]


def test_cronjob_cells():
    obj = {"metadata": {"name": "backup", "creationTimestamp": stamp(hours=2)},
           "spec": {"schedule": "@hourly", "timeZone": "Europe/Berlin", "suspend": False},
           "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": stamp(minutes=3)}}
    table = to_table(CRONJOB, [obj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    assert table["rows"][0]["cells"][:7] == ["backup", "@hourly", "Europe/Berlin", "False", 1, "3m", "120m"]
