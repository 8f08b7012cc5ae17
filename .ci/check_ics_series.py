#!/usr/bin/env python3
"""Independent check that calendars read notifyctl's recurring invitations as notifyctl does.

Writes sample invitations (a Rust test, `write_ics_samples`, with the occurrences notifyctl
expects beside each) and expands every one with Python's `icalendar` and
`recurring_ical_events`, a separate RFC 5545 implementation (dateutil's rrule):

  1. as written: TZID is an IANA name, so the reader uses its own zone database;
  2. with the TZID renamed, so the reader has only the VTIMEZONE notifyctl derived
     (as Outlook does): this checks the VTIMEZONE's STANDARD/DAYLIGHT rules.

Both must give the expected occurrences (start and end, moved ones at their new time,
cancelled ones absent). The only differences allowed are within three hours of a clock
change, where this reader departs from RFC 5545 and says so here: it adds DTEND - DTSTART
to the local wall-clock time (RFC 5545 §3.8.5.3 wants the exact duration, as notifyctl
does), and with only a VTIMEZONE it reads a local time that does not exist with the offset
after the gap (§3.3.5 wants the one before). They are counted and listed, never silently.

Usage: python3 ci/check_ics_series.py
Needs: cargo; python3 with `icalendar` and `recurring_ical_events` (installed into a venv
under target/ from PyPI when missing).
"""

import json
import os
import zoneinfo
from datetime import timedelta
import pathlib
import subprocess
import sys
from datetime import datetime, timezone

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "target" / "ics-samples"
VENV = ROOT / "target" / "ics-check-venv"


def ensure_packages():
    try:
        import icalendar  # noqa: F401
        import recurring_ical_events  # noqa: F401
        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "icalendar>=6", "recurring_ical_events>=3"],
            check=True,
        )
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def expand(text, start, end):
    import icalendar
    import recurring_ical_events

    cal = icalendar.Calendar.from_ical(text)
    found = []
    for event in recurring_ical_events.of(cal).between(start, end):
        s = event["DTSTART"].dt.astimezone(timezone.utc)
        e = event["DTEND"].dt.astimezone(timezone.utc)
        found.append((s.isoformat(), e.isoformat()))
    return sorted(found)


def main():
    ensure_packages()
    SAMPLES.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["cargo", "test", "--quiet", "--lib", "write_ics_samples", "--", "--ignored"],
        cwd=ROOT,
        env=dict(os.environ, ICS_SAMPLES_DIR=str(SAMPLES)),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    failures = 0
    checked = 0
    for ics in sorted(SAMPLES.glob("*.ics")):
        spec = json.loads(ics.with_suffix(".json").read_text())
        start = datetime.fromisoformat(spec["from"])
        end = datetime.fromisoformat(spec["to"])
        expected = sorted(
            (datetime.fromisoformat(s).isoformat(), datetime.fromisoformat(e).isoformat())
            for s, e in spec["occurrences"]
        )
        text = ics.read_text()
        tzid = next(l[5:] for l in text.splitlines() if l.startswith("TZID:"))
        variants = {
            "by zone name": text,
            "by VTIMEZONE only": text.replace(tzid, "X-notifyctl-check/" + tzid.replace("/", "-")),
        }
        zone = zoneinfo.ZoneInfo(tzid)

        def near_clock_change(iso):
            t = datetime.fromisoformat(iso)
            before = (t - timedelta(hours=3)).astimezone(zone).utcoffset()
            after = (t + timedelta(hours=3)).astimezone(zone).utcoffset()
            return before != after

        for how, body in variants.items():
            got = expand(body, start, end)
            checked += 1
            strict, edges = [], []
            if len(got) != len(expected):
                strict.append(f"{len(got)} occurrences, {len(expected)} expected")
            for mine, theirs in zip(expected, got):
                if mine != theirs:
                    (edges if near_clock_change(mine[0]) else strict).append((mine, theirs))
            if strict:
                failures += 1
                print(f"FAIL {ics.stem} ({how}): {strict[:5]}")
            else:
                print(f"ok   {ics.stem} ({how}): {len(got)} occurrences")
            for mine, theirs in edges:
                print(f"       at a clock change, notifyctl {mine} / reader {theirs}")
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
