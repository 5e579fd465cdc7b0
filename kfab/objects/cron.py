"""CronJob schedules: the standard 5-field cron syntax and the @hourly-style macros, in a time zone.

kube-controller-manager parses with robfig/cron's ParseStandard; croniter reads the same syntax (day-of-month
and day-of-week OR-ed when both are restricted, names for months and weekdays, ranges and steps). croniter also
takes 6/7-field forms and Jenkins' `H`, which ParseStandard refuses, so the field count is checked here first.
"""

from __future__ import annotations

import datetime
import zoneinfo

from croniter import croniter, CroniterBadCronError, CroniterBadDateError, CroniterError

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
UTC = datetime.timezone.utc


class ScheduleError(ValueError):
    pass


def schedule_problem(schedule: str) -> str | None:
    """Why `schedule` is no standard cron schedule, in robfig/cron's words where it has them; None if it is one."""
    text = schedule.strip()
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        text = text.split(None, 1)[1] if " " in text else ""
    if text.startswith("@"):
        if text in MACROS:
            return None
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        croniter(text)
    except (CroniterBadCronError, CroniterError, ValueError) as e:
        return str(e)
    return None


def time_zone_problem(name: str) -> str | None:
    """Go's time.LoadLocation error for an unknown zone; the message kube-apiserver's validation shows."""
    if name == "" or name.lower() == "local":
        return None  # reported separately by validation, with its own messages
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name}"
    return None


class Schedule:
    """A parsed schedule in a zone: next(t) is the first scheduled instant strictly after t (UTC in, UTC out)."""

    def __init__(self, schedule: str, time_zone: str | None = None):
        problem = schedule_problem(schedule)
        if problem:
            raise ScheduleError(problem)
        text = schedule.strip()
        zone = time_zone
        if text.startswith("TZ=") or text.startswith("CRON_TZ="):
            prefix, text = text.split(None, 1)
            zone = prefix.split("=", 1)[1]
        self.expression = text
        try:
            self.zone = zoneinfo.ZoneInfo(zone) if zone else UTC
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone {zone}") from None

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        try:
            nxt = croniter(self.expression, after.astimezone(self.zone)).get_next(datetime.datetime)
        except CroniterBadDateError:
            return None  # e.g. "0 0 30 2 *": never
        return nxt.astimezone(UTC)
