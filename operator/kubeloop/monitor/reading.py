"""The window's request logs and feedback, read from the store one file at a time.

Files are found by their hour folders (dt=YYYY-MM-DD/hr=HH, one listing per day), then records
are kept by their own time. A file or a line that cannot be read is counted and skipped: one bad
upload must not hide a day of traffic. Only one file is in memory at a time.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kubeloop.store.client import ObjectMissing, Store

log = logging.getLogger("kubeloop.monitor")
HOUR_FOLDER = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/hr=(\d{2})/[^/]+\.jsonl\.gz$")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def days(self, end: datetime | None = None) -> list[datetime]:
        last = (end or self.end).date()
        day, days = self.start.date(), []
        while day <= last:
            days.append(datetime(day.year, day.month, day.day, tzinfo=UTC))
            day += timedelta(days=1)
        return days


@dataclass
class ReadCounts:
    files: int = 0
    bad_files: int = 0
    bad_records: int = 0


def hour_of(location: str) -> datetime | None:
    match = HOUR_FOLDER.search(location)
    if match is None:
        return None
    return datetime.strptime(f"{match.group(1)} {match.group(2)}", "%Y-%m-%d %H").replace(tzinfo=UTC)


def files_between(store: Store, folder: str, start: datetime, end: datetime) -> list[str]:
    """Log files under `folder` (.../dt=*/hr=*/) whose hour overlaps [start, end], oldest first."""
    found = []
    for day in Window(start, end).days():
        for location in store.list(f"{folder}dt={day:%Y-%m-%d}/"):
            hour = hour_of(location)
            if hour is not None and hour <= end and hour + timedelta(hours=1) > start:
                found.append(location)
    return sorted(found, key=lambda loc: (hour_of(loc), loc))


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def read_records(store: Store, location: str, counts: ReadCounts) -> list[dict[str, Any]]:
    """Every JSON object in one gzip JSON-lines file; unreadable lines counted, not fatal."""
    try:
        text = gzip.decompress(store.get_bytes(location))
    except ObjectMissing:
        return []  # deleted between listing and reading (retention): nothing to count
    except (OSError, EOFError, zlib.error):
        counts.bad_files += 1
        log.warning("skipping an unreadable log file", extra={"location": location})
        return []
    counts.files += 1
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:  # a ValueError
            counts.bad_records += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            counts.bad_records += 1
    return records


def records_in(
    store: Store, folder: str, window: Window, counts: ReadCounts
) -> Iterator[tuple[datetime, list[dict[str, Any]]]]:
    """(file's hour, its records inside the window) for every file of the window, one at a time."""
    for location in files_between(store, folder, window.start, window.end):
        kept = []
        for record in read_records(store, location, counts):
            at = parse_time(record.get("time"))
            if at is None:
                counts.bad_records += 1
            elif window.start <= at <= window.end:
                record["_at"] = at
                kept.append(record)
        yield hour_of(location) or window.start, kept
