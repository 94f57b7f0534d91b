"""Quota periods: PostgreSQL does the calendar (tg_period_start), so days
and months start at local midnight in the configured zone across DST
changes and month ends."""
import pytest


CASES = [
    # zone, instant, period, expected start (UTC)
    ("Europe/Berlin", "2026-03-29 12:00+00", "day", "2026-03-28 23:00:00+00"),   # spring forward: 23 h day
    ("Europe/Berlin", "2026-03-30 12:00+00", "day", "2026-03-29 22:00:00+00"),
    ("Europe/Berlin", "2026-10-25 12:00+00", "day", "2026-10-24 22:00:00+00"),   # fall back: 25 h day
    ("Europe/Berlin", "2026-10-25 23:30+00", "day", "2026-10-25 23:00:00+00"),
    ("Europe/Berlin", "2026-03-29 00:30+00", "minute", "2026-03-29 00:30:00+00"),
    ("America/New_York", "2026-03-08 06:59+00", "day", "2026-03-08 05:00:00+00"),  # 02:00 EST -> EDT
    ("America/New_York", "2026-03-09 03:59+00", "day", "2026-03-08 05:00:00+00"),  # still Mar 8 local (23:59 EDT)
    ("America/New_York", "2026-03-09 04:00+00", "day", "2026-03-09 04:00:00+00"),
    ("America/New_York", "2026-11-01 05:30+00", "day", "2026-11-01 04:00:00+00"),  # 01:30 EDT, the day is 25 h
    ("America/New_York", "2026-11-02 04:59+00", "day", "2026-11-01 04:00:00+00"),  # 23:59 EST Nov 1
    ("America/New_York", "2026-11-02 05:00+00", "day", "2026-11-02 05:00:00+00"),
    ("UTC", "2026-02-28 23:59:59+00", "month", "2026-02-01 00:00:00+00"),
    ("UTC", "2026-03-01 00:00:00+00", "month", "2026-03-01 00:00:00+00"),
    ("UTC", "2028-02-29 12:00+00", "month", "2028-02-01 00:00:00+00"),           # leap day
    ("Europe/Berlin", "2026-03-31 22:30+00", "month", "2026-03-31 22:00:00+00"),  # April 1 local, CEST
    ("Europe/Berlin", "2026-03-31 21:59+00", "month", "2026-02-28 23:00:00+00"),  # still March, began in CET
    ("America/New_York", "2026-12-01 04:59+00", "month", "2026-11-01 04:00:00+00"),  # Nov began in EDT
]


@pytest.mark.parametrize("zone,at,period,start", CASES)
def test_period_starts_at_local_midnight(tg, zone, at, period, start):
    got = tg.db.value(f"SET TIME ZONE 'UTC'; SELECT tg_period_start('{period}', '{zone}', '{at}')")
    assert got == start


@pytest.mark.parametrize("zone,day,hours", [
    ("Europe/Berlin", "2026-03-29 12:00+00", 23),
    ("Europe/Berlin", "2026-10-25 12:00+00", 25),
    ("America/New_York", "2026-03-08 12:00+00", 23),
    ("America/New_York", "2026-11-01 12:00+00", 25),
    ("Europe/Berlin", "2026-06-01 12:00+00", 24),
])
def test_dst_days_are_23_or_25_hours_long(tg, zone, day, hours):
    # The next day's start, found as the reservation code finds it (+36 h).
    got = tg.db.value(f"""SELECT extract(epoch FROM
        tg_period_start('day', '{zone}', tg_period_start('day', '{zone}', '{day}') + interval '36 hours')
        - tg_period_start('day', '{zone}', '{day}')) / 3600""")
    assert float(got) == hours
