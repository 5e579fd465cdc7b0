"""CronJob scheduling decisions with an injected clock (kfab.controllers.cronjob_util), and Job bookkeeping
pieces (kfab.controllers.job_util): what upstream's controllers decide for the same inputs."""

from __future__ import annotations

import datetime

import pytest

from kfab.controllers import cronjob_util as cu
from kfab.controllers import job_util as ju
from kfab.objects.cron import Schedule, schedule_problem

UTC = datetime.timezone.utc


def t(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def cronjob(created: str, last: str | None = None, deadline: int | None = None) -> dict:
    spec = {"schedule": "* * * * *"}
    if deadline is not None:
        spec["startingDeadlineSeconds"] = deadline
    status = {"lastScheduleTime": last} if last else {}
    return {"metadata": {"name": "backup", "namespace": "default", "uid": "u1", "creationTimestamp": created},
            "apiVersion": "batch/v1", "kind": "CronJob", "spec": spec, "status": status}


def test_nothing_due_before_the_first_start_time():
    due = cu.most_recent_schedule_time(cronjob("2026-01-01T10:00:30Z"), t("2026-01-01T10:00:59"), Schedule("* * * * *"))
    assert due.most_recent is None and not due.too_many_missed


def test_the_start_time_just_passed_is_due():
    due = cu.most_recent_schedule_time(cronjob("2026-01-01T10:00:30Z"), t("2026-01-01T10:01:00.2"),
                                       Schedule("* * * * *"))
    assert due.most_recent == t("2026-01-01T10:01:00")


def test_after_an_outage_only_the_most_recent_missed_start_runs():
    cj = cronjob("2026-01-01T00:00:00Z", last="2026-01-01T10:00:00Z")
    due = cu.most_recent_schedule_time(cj, t("2026-01-01T10:42:17"), Schedule("*/5 * * * *"))
    assert due.most_recent == t("2026-01-01T10:40:00")
    assert not due.too_many_missed  # 8 missed


def test_more_than_100_missed_start_times_are_reported():
    cj = cronjob("2026-01-01T00:00:00Z", last="2026-01-01T00:00:00Z")
    due = cu.most_recent_schedule_time(cj, t("2026-01-01T03:00:30"), Schedule("* * * * *"))
    assert due.too_many_missed and due.most_recent == t("2026-01-01T03:00:00")


def test_starting_deadline_bounds_how_far_back_the_controller_looks():
    cj = cronjob("2026-01-01T00:00:00Z", last="2026-01-01T00:00:00Z", deadline=200)
    due = cu.most_recent_schedule_time(cj, t("2026-01-01T03:00:30"), Schedule("* * * * *"))
    assert not due.too_many_missed and due.most_recent == t("2026-01-01T03:00:00")


def test_irregular_schedule_finds_the_exact_latest_start():
    cj = cronjob("2026-01-05T00:00:00Z")  # a Monday
    due = cu.most_recent_schedule_time(cj, t("2026-01-07T20:00:00"), Schedule("30 6-16/4 * * 1-5"))
    assert due.most_recent == t("2026-01-07T14:30:00")


def test_next_look_is_just_after_the_next_start_time():
    cj = cronjob("2026-01-01T10:00:30Z", last="2026-01-01T10:01:00Z")
    assert cu.seconds_to_next(cj, t("2026-01-01T10:01:20"), Schedule("* * * * *")) == pytest.approx(40.1)


def test_time_zone_shifts_the_start_times():
    schedule = Schedule("0 9 * * *", "Europe/Berlin")
    assert schedule.next(t("2026-07-01T00:00:00")) == t("2026-07-01T07:00:00")   # CEST, UTC+2
    assert schedule.next(t("2026-01-01T00:00:00")) == t("2026-01-01T08:00:00")   # CET, UTC+1


def test_job_name_and_scheduled_timestamp_annotation():
    cj = cronjob("2026-01-01T00:00:00Z")
    cj["spec"]["jobTemplate"] = {"metadata": {"labels": {"app": "b"}}, "spec": {"template": {"spec": {}}}}
    job = cu.job_for(cj, t("2026-01-01T10:01:00"), datetime.timezone.utc)
    assert job["metadata"]["name"] == f"backup-{int(t('2026-01-01T10:01:00').timestamp()) // 60}"
    assert job["metadata"]["annotations"][cu.SCHEDULED_TIMESTAMP] == "2026-01-01T10:01:00Z"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob" and job["metadata"]["labels"] == {"app": "b"}


def test_history_limits_keep_the_newest_finished_jobs():
    def job(name: str, kind: str, start: str) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": start},
                "status": {"startTime": start, "conditions": [{"type": kind, "status": "True"}]}}
    jobs = [job(f"ok{i}", "Complete", f"2026-01-01T10:0{i}:00Z") for i in range(5)] + \
           [job(f"bad{i}", "Failed", f"2026-01-01T11:0{i}:00Z") for i in range(3)]
    gone = [j["metadata"]["name"] for j in cu.jobs_to_clean(jobs, 3, 1)]
    assert gone == ["ok0", "ok1", "bad0", "bad1"]


@pytest.mark.parametrize("schedule,problem", [
    ("@hourly", None), ("*/15 1-5 * * MON-FRI", None), ("0 0 1 JAN *", None),
    ("x", "expected exactly 5 fields, found 1: [x]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("@every 1h", "unrecognized descriptor: @every 1h")])
def test_schedule_syntax(schedule, problem):
    assert schedule_problem(schedule) == problem


def test_completed_indexes_text():
    assert ju.format_indexes({1, 3, 4, 5, 7}) == "1,3-5,7"
    assert ju.format_indexes({0, 1}) == "0,1"
    assert ju.parse_indexes("1,3-5,7", 6) == {1, 3, 4, 5}


def test_failure_backoff_doubles_from_10s_and_is_capped():
    last = t("2026-01-01T10:00:00")
    assert ju.backoff_remaining(1, last, last) == 10
    assert ju.backoff_remaining(3, last, last + datetime.timedelta(seconds=15)) == 25
    assert ju.backoff_remaining(20, last, last) == ju.MAX_POD_FAILURE_BACKOFF
    assert ju.next_backoff_record(2, last, [last + datetime.timedelta(seconds=5)], []) == (0, None)


def test_pod_failure_policy_rules_in_order():
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42]}}]}

    def pod(code: int, conditions=()) -> dict:
        return {"metadata": {"name": "p", "namespace": "ns"}, "status": {
            "phase": "Failed", "conditions": list(conditions),
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}}
    assert ju.match_pod_failure_policy(policy, pod(42)) == (
        "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1", True, "FailJob")
    assert ju.match_pod_failure_policy(policy, pod(1)) == (None, True, "Count")
    assert ju.match_pod_failure_policy(policy, pod(137, [{"type": "DisruptionTarget", "status": "True"}])) == (
        None, False, "Ignore")
