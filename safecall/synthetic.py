"""Synthetic rosters with fictional people, and drill settings: for the demo, drills and benchmarks.

Numbers are 010-0xxx-xxxx: valid in form but never assigned to a subscriber.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

# Edits to the shipped campaign for drills in real (or accelerated) time: a calling window that is always
# open, retries at once, and every first call due at the start.
ALWAYS_OPEN_CAMPAIGN = {
    'spacing = ["1h", "3h", "next_day"]': 'spacing = ["0m"]',
    'weekdays = ["mon", "tue", "wed", "thu", "fri"]': 'weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
    'start = "09:00"': 'start = "00:00"',
    'end = "18:00"': 'end = "23:59"',
    'start = "10:00"': 'start = "00:00"',
    "skip_holidays = true": "skip_holidays = false",
    # First calls all due at once: drills of limits and faults in real time, not of the history order's pacing.
    'first_calls = "history"': 'first_calls = "due"',
}


# ... whose "0m" spacing the campaign refuses unless the instance is a test one (config/safecall.toml).
FAST_RETRIES_SETTINGS = "\n[testing]\nfast_retries = true\n"


def allow_fast_retries(settings_file: Path) -> None:
    """Mark a test instance's settings so its campaigns may retry at once (see FAST_RETRIES_SETTINGS)."""
    text = settings_file.read_text(encoding="utf-8")
    if "[testing]" not in text:
        settings_file.write_text(text + FAST_RETRIES_SETTINGS, encoding="utf-8")


def simulated_pbxs_toml(count: int, channels: int, calls_per_second: float, *extra: str) -> str:
    """trunks.toml for `count` simulated PBXs named pbx1..pbxN (one dialer worker each); `extra` lines go in each."""
    lines = ['default = "pbx1"']
    for index in range(1, count + 1):
        lines += [
            f"[trunks.pbx{index}]",
            'type = "simulated"',
            f"channels = {channels}",
            f"calls_per_second = {calls_per_second}",
            "seed = 11",
            *extra,
        ]
    return "\n".join(lines) + "\n"


SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
GIVEN = [
    "영수",
    "순자",
    "정숙",
    "영희",
    "옥순",
    "광수",
    "말순",
    "영호",
    "정자",
    "춘자",
    "상철",
    "복순",
    "용수",
    "금자",
    "재호",
    "명숙",
]
HEADER = [
    "성명",
    "전화번호",
    "보조연락처",
    "주소",
    "행정동",
    "생년월일",
    "보호자 성명",
    "보호자 연락처",
    "동의일자",
    "위험도",
]


def synthetic_people(count: int, dongs: list[str], seed: int = 7) -> Iterator[list[str]]:
    rng = random.Random(seed)
    for index in range(count):
        # Name and birth date (the roster's key) are unique for the first 3.5 million people.
        name = SURNAMES[index % len(SURNAMES)] + GIVEN[(index // len(SURNAMES)) % len(GIVEN)]
        born = date(1936, 1, 1) + timedelta(days=(index // (len(SURNAMES) * len(GIVEN))) * 37 % (365 * 30))
        dong = dongs[index % len(dongs)]
        phone = f"010-0{index // 10000 % 1000:03d}-{index % 10000:04d}"
        second = f"070-0{index % 1000:03d}-{rng.randrange(10000):04d}" if rng.random() < 0.15 else ""
        guardian = rng.choice(SURNAMES) + rng.choice(GIVEN) if rng.random() < 0.6 else ""
        guardian_phone = f"010-09{index % 100:02d}-{rng.randrange(10000):04d}" if guardian else ""
        consent = "" if rng.random() < 0.02 else (date(2025, 1, 1) + timedelta(days=rng.randrange(300))).isoformat()
        risk = rng.choices(["상", "중", "하"], weights=[2, 5, 3])[0]
        address = f"서울특별시 종로구 {dong} {rng.randrange(1, 300)}-{rng.randrange(1, 40)}"
        yield [name, phone, second, address, dong, born.isoformat(), guardian, guardian_phone, consent, risk]


def write_roster(path: Path, count: int, dongs: list[str], seed: int = 7, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(synthetic_people(count, dongs, seed))
    return path
