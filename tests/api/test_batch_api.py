"""batch/v1 Jobs and CronJobs through real kubectl and the official client, on a `kfab server` (controllers
in-process) with hollow nodes that finish Job pods (kfab.io/hollow-run-seconds, kfab.io/hollow-exit-code)."""

from __future__ import annotations

import datetime
import json
import secrets
import time

import pytest
import yaml
from kubernetes import client

from tests.api.controllers_cluster import running_cluster
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from running_cluster(tmp_path_factory.mktemp("kfab-batch"), nodes=2)


@pytest.fixture
def ns(cluster):
    name = f"batch-{secrets.token_hex(3)}"
    cluster.core.create_namespace({"metadata": {"name": name}})
    yield name
    cluster.core.delete_namespace(name)


def batch(cluster) -> client.BatchV1Api:
    return client.BatchV1Api(cluster.api)


def job_manifest(name: str, run: float = 0.3, exit_code: int = 0, **spec) -> dict:
    pod_spec = {"restartPolicy": spec.pop("restartPolicy", "Never"),
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "true"]}]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"annotations": {"kfab.io/hollow-run-seconds": str(run),
                                                               "kfab.io/hollow-exit-code": str(exit_code)}},
                                  "spec": pod_spec}, **spec}}


def apply(cluster, ns: str, *objects: dict) -> None:
    cluster.kubectl("apply", "-n", ns, "--validate=strict", "-f", "-",
                    input="\n---\n".join(yaml.safe_dump(o) for o in objects), check=True)


def condition(job, kind: str):
    return next((c for c in job.status.conditions or [] if c.type == kind), None)


def job_pods(cluster, ns: str, name: str) -> list:
    return cluster.core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}").items


def test_job_is_served_with_kube_defaults_columns_and_schema(cluster, ns):
    cluster.kubectl("create", "job", "hello", "-n", ns, "--image=busybox", "--", "echo", "hi", check=True)
    job = batch(cluster).read_namespaced_job("hello", ns)
    uid = job.metadata.uid
    assert (job.spec.parallelism, job.spec.completions, job.spec.backoff_limit) == (1, 1, 6)
    assert (job.spec.completion_mode, job.spec.suspend) == ("NonIndexed", False)
    assert job.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert job.spec.template.metadata.labels == {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                                                 "batch.kubernetes.io/job-name": "hello", "job-name": "hello"}
    cluster.kubectl("wait", "-n", ns, "--for=condition=Complete", "job/hello", "--timeout=30s", check=True)
    table = cluster.kubectl("get", "jobs", "-n", ns, check=True).stdout.split("\n")
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1].split()[:3] == ["hello", "Complete", "1/1"]
    job = batch(cluster).read_namespaced_job("hello", ns)
    assert job.status.succeeded == 1 and job.status.completion_time and job.status.start_time
    assert [c.type for c in job.status.conditions] == ["SuccessCriteriaMet", "Complete"]
    # Counted pods lose the tracking finalizer.
    assert all("batch.kubernetes.io/job-tracking" not in (p.metadata.finalizers or [])
               for p in job_pods(cluster, ns, "hello"))
    explain = cluster.kubectl("explain", "job.spec.backoffLimit", check=True).stdout
    assert "backoffLimit" in explain and "<integer>" in explain
    bad = job_manifest("typo")
    bad["spec"]["backofLimit"] = 2
    out = cluster.kubectl("apply", "-n", ns, "--validate=strict", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert out.returncode != 0 and 'unknown field "spec.backofLimit"' in out.stderr
    always = job_manifest("always", restartPolicy="Always")
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(always), check=False)
    assert out.returncode != 0
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"' \
        in out.stderr


def test_job_failing_past_backoff_limit_ends_failed_after_the_backoff(cluster, ns):
    apply(cluster, ns, job_manifest("crash", run=0.2, exit_code=1, backoffLimit=1))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Failed", "job/crash", "--timeout=60s", check=True)
    job = batch(cluster).read_namespaced_job("crash", ns)
    failed = condition(job, "Failed")
    assert (failed.reason, failed.message) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert condition(job, "FailureTarget").reason == "BackoffLimitExceeded"
    assert job.status.failed == 2 and not job.status.succeeded and not job.status.uncounted_terminated_pods.failed
    pods = sorted(job_pods(cluster, ns, "crash"), key=lambda p: p.metadata.creation_timestamp)
    assert len(pods) == 2 and all(p.status.phase == "Failed" for p in pods)
    first_failed = pods[0].status.container_statuses[0].state.terminated.finished_at
    # The replacement waits out the pod failure backoff (10 s after the first failure).
    assert (pods[1].metadata.creation_timestamp - first_failed).total_seconds() >= 9


def test_on_failure_restarts_in_place_count_against_the_backoff_limit(cluster, ns):
    apply(cluster, ns, job_manifest("flaky", run=0.3, exit_code=3, backoffLimit=2, restartPolicy="OnFailure"))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Failed", "job/flaky", "--timeout=60s", check=True)
    assert condition(batch(cluster).read_namespaced_job("flaky", ns), "Failed").reason == "BackoffLimitExceeded"
    # The kubelet restarted the container in place: one pod was made, and deleted when the Job failed.
    events = [e for e in cluster.core.list_namespaced_event(ns).items if e.involved_object.name == "flaky"]
    assert sorted(e.reason for e in events if e.reason.startswith("Successful")) == [
        "SuccessfulCreate", "SuccessfulDelete"]


def test_indexed_job_completes_every_index_once(cluster, ns):
    apply(cluster, ns, job_manifest("idx", completions=6, parallelism=3, completionMode="Indexed"))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Complete", "job/idx", "--timeout=60s", check=True)
    job = batch(cluster).read_namespaced_job("idx", ns)
    assert (job.status.succeeded, job.status.completed_indexes) == (6, "0-5")
    pods = job_pods(cluster, ns, "idx")
    indexes = sorted(int(p.metadata.annotations["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert indexes == list(range(6))  # one pod per index, none run twice
    pod = pods[0]
    index = pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
    assert pod.metadata.labels["batch.kubernetes.io/job-completion-index"] == index
    assert pod.spec.hostname == f"idx-{index}" and pod.metadata.name.startswith(f"idx-{index}-")
    env = pod.spec.containers[0].env[0]
    assert env.name == "JOB_COMPLETION_INDEX"
    assert env.value_from.field_ref.field_path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_active_deadline_fails_the_job_and_stops_its_pods(cluster, ns):
    apply(cluster, ns, job_manifest("slow", run=120, parallelism=2, completions=4, activeDeadlineSeconds=2))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Failed", "job/slow", "--timeout=30s", check=True)
    job = batch(cluster).read_namespaced_job("slow", ns)
    assert condition(job, "Failed").reason == "DeadlineExceeded"
    assert condition(job, "Failed").message == "Job was active longer than specified deadline"
    assert job.status.failed == 2 and not job.status.active
    wait_until("the deadline's pods to stop",
               lambda: not job_pods(cluster, ns, "slow") or all(
          p.metadata.deletion_timestamp or p.status.phase in ("Failed", "Succeeded")
          for p in job_pods(cluster, ns, "slow")), 15)


def test_suspended_job_runs_nothing_until_resumed(cluster, ns):
    apply(cluster, ns, job_manifest("later", suspend=True, completions=2))
    api = batch(cluster)
    wait_until("the Suspended condition", lambda: condition(api.read_namespaced_job("later", ns), "Suspended"), 15)
    job = api.read_namespaced_job("later", ns)
    assert condition(job, "Suspended").status == "True" and condition(job, "Suspended").reason == "JobSuspended"
    assert job.status.start_time is None and not job_pods(cluster, ns, "later")
    assert cluster.kubectl("get", "jobs", "-n", ns, "later").stdout.split("\n")[1].split()[1] == "Suspended"
    cluster.kubectl("patch", "job", "later", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}', check=True)
    cluster.kubectl("wait", "-n", ns, "--for=condition=Complete", "job/later", "--timeout=30s", check=True)
    resumed = condition(api.read_namespaced_job("later", ns), "Suspended")
    assert (resumed.status, resumed.reason, resumed.message) == ("False", "JobResumed", "Job resumed")


def test_pod_failure_policy_fail_job_on_exit_code(cluster, ns):
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    apply(cluster, ns, job_manifest("fatal", run=0.2, exit_code=42, backoffLimit=6, podFailurePolicy=policy))
    cluster.kubectl("wait", "-n", ns, "--for=condition=Failed", "job/fatal", "--timeout=30s", check=True)
    job = batch(cluster).read_namespaced_job("fatal", ns)
    assert job.spec.pod_failure_policy.rules[1].on_pod_conditions[0].status == "True"  # defaulted
    failed = condition(job, "Failed")
    pod = job_pods(cluster, ns, "fatal")[0]
    assert failed.reason == "PodFailurePolicy"
    assert failed.message == (f"Container main for pod {ns}/{pod.metadata.name} failed with exit code 42 matching "
                              "FailJob rule at index 0")
    assert len(job_pods(cluster, ns, "fatal")) == 1  # no retry despite backoffLimit 6


def test_finished_job_with_ttl_is_deleted_with_its_pods(cluster, ns):
    apply(cluster, ns, job_manifest("brief", ttlSecondsAfterFinished=1))
    api = batch(cluster)
    wait_until("the Job to succeed", lambda: api.read_namespaced_job("brief", ns).status.succeeded == 1, 30)

    def gone():
        names = [j.metadata.name for j in api.list_namespaced_job(ns).items]
        return "brief" not in names and not job_pods(cluster, ns, "brief")
    wait_until("the Job and its pods to be deleted after its TTL", gone, 30)


def test_deleting_a_job_with_kubectl_deletes_its_pods(cluster, ns):
    apply(cluster, ns, job_manifest("running", run=120, parallelism=2, completions=2))
    wait_until("two running pods",
               lambda: len([p for p in job_pods(cluster, ns, "running") if p.status.phase == "Running"]) == 2, 30)
    cluster.kubectl("delete", "job", "running", "-n", ns, check=True)
    wait_until("the Job's pods to be garbage collected", lambda: not job_pods(cluster, ns, "running"), 30)


def test_a_job_deleted_without_a_policy_orphans_its_pods(cluster, ns):
    # batch/v1 keeps the pods by default (kube's compatibility default); kubectl always sends Background.
    apply(cluster, ns, job_manifest("kept", run=120))
    wait_until("a running pod", lambda: [p for p in job_pods(cluster, ns, "kept") if p.status.phase == "Running"], 30)
    batch(cluster).delete_namespaced_job("kept", ns)
    wait_until("the Job to go",
               lambda: "kept" not in [j.metadata.name for j in batch(cluster).list_namespaced_job(ns).items], 30)
    [pod] = wait_until("its pod orphaned and released",
                       lambda: [p for p in job_pods(cluster, ns, "kept") if not p.metadata.owner_references
                                and not p.metadata.finalizers], 30)
    assert pod.status.phase == "Running" and not pod.metadata.deletion_timestamp


def test_cronjob_starts_missed_run_and_forbid_skips_while_active(cluster, ns):
    job = job_manifest("unused", run=600)
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
               "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid",
                        "jobTemplate": {"spec": job["spec"]}}}
    apply(cluster, ns, cronjob)
    api = batch(cluster)
    cj = api.read_namespaced_cron_job("tick", ns)
    assert (cj.spec.successful_jobs_history_limit, cj.spec.failed_jobs_history_limit, cj.spec.suspend) == (3, 1, False)
    # As after a controller outage: the last start was long ago; only the most recent missed one runs, now.
    long_ago = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=30)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    cluster.kubectl("patch", "cronjob", "tick", "-n", ns, "--subresource=status", "--type=merge", "-p",
                    json.dumps({"status": {"lastScheduleTime": long_ago}}), check=True)
    jobs = wait_until("the missed run's Job", lambda: api.list_namespaced_job(ns).items, 20)
    started = time.time()
    assert len(jobs) == 1
    first = jobs[0]
    scheduled = first.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    minute = datetime.datetime.fromisoformat(scheduled.replace("Z", "+00:00"))
    assert minute.second == 0 and 0 <= started - minute.timestamp() < 70
    assert first.metadata.name == f"tick-{int(minute.timestamp()) // 60}"
    assert first.metadata.owner_references[0].kind == "CronJob"
    cj = wait_until("status.active", lambda: (c := api.read_namespaced_cron_job("tick", ns)).status.active and c, 10)
    assert [r.name for r in cj.status.active] == [first.metadata.name]
    assert cj.status.last_schedule_time == minute
    table = cluster.kubectl("get", "cronjobs", "-n", ns, check=True).stdout.split("\n")
    assert table[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert table[1].split()[:6] == ["tick", "*", "*", "*", "*", "*"]
    assert table[1].split()[6:9] == ["<none>", "False", "1"]
    # `kubectl create job --from=cronjob/...` runs the template now, owned by the CronJob, marked manual.
    cluster.kubectl("create", "job", "by-hand", "--from=cronjob/tick", "-n", ns, check=True)
    manual = api.read_namespaced_job("by-hand", ns)
    assert manual.metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual"
    assert manual.metadata.owner_references[0].name == "tick"

    # The next start time comes while the first Job still runs: Forbid skips it.
    def skipped():
        events = cluster.core.list_namespaced_event(ns).items
        return [e for e in events if e.reason == "JobAlreadyActive" and e.involved_object.name == "tick"]
    [event] = wait_until("the JobAlreadyActive event of the next start time", skipped, 75)
    assert event.message == "Not starting job because prior execution is running and concurrency policy is Forbid"
    names = sorted(j.metadata.name for j in api.list_namespaced_job(ns).items)
    assert names == sorted(["by-hand", first.metadata.name])
    assert api.read_namespaced_cron_job("tick", ns).status.last_schedule_time == minute


def test_cronjob_suspend_holds_its_runs_and_replace_swaps_the_running_job(cluster, ns):
    job = job_manifest("unused", run=600)
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "swap"},
               "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Replace", "suspend": True,
                        "jobTemplate": {"spec": job["spec"]}}}
    apply(cluster, ns, cronjob)
    api = batch(cluster)
    long_ago = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=30)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    cluster.kubectl("patch", "cronjob", "swap", "-n", ns, "--subresource=status", "--type=merge", "-p",
                    json.dumps({"status": {"lastScheduleTime": long_ago}}), check=True)
    # Suspended: the missed run is not started (unsuspended, the controller starts it within a second: the test
    # above and the resume below).
    time.sleep(3)
    assert api.list_namespaced_job(ns).items == []
    assert cluster.kubectl("get", "cronjob", "swap", "-n", ns).stdout.split("\n")[1].split()[6:8] == \
        ["<none>", "True"]
    cluster.kubectl("patch", "cronjob", "swap", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    [first] = wait_until("the missed run once resumed", lambda: api.list_namespaced_job(ns).items, 20)
    wait_until("its pod running", lambda: [p for p in job_pods(cluster, ns, first.metadata.name)
                                           if p.status.phase == "Running"], 20)

    # Replace: at the next start time the running Job is deleted (its pods go with it) and a new one starts.
    def replacement():
        jobs = {j.metadata.name: j for j in api.list_namespaced_job(ns).items}
        return first.metadata.name not in jobs and len(jobs) == 1 and list(jobs.values())
    [second] = wait_until("the next start time's Job in place of the first", replacement, 75)
    assert int(second.metadata.name.rsplit("-", 1)[1]) > int(first.metadata.name.rsplit("-", 1)[1])
    wanted = {("SuccessfulDelete", f"Deleted job {first.metadata.name}"),
              ("SuccessfulCreate", f"Created job {second.metadata.name}")}
    wait_until(f"the CronJob's events {wanted}", lambda: wanted <= {
        (e.reason, e.message) for e in cluster.core.list_namespaced_event(ns).items
        if e.involved_object.name == "swap"}, 10)
    cj = wait_until("status.active naming only the new Job", lambda: (
        c := api.read_namespaced_cron_job("swap", ns)).status.active and len(c.status.active) == 1 and c, 10)
    assert cj.status.active[0].name == second.metadata.name
    wait_until("the first Job's pods gone", lambda: not [p for p in job_pods(cluster, ns, first.metadata.name)
                                                        if p.metadata.deletion_timestamp is None], 30)
