"""The messages people leave on "help", for the officer's call-back page (issue 30): found by the task, read from the
trunk that recorded them, and never fetched from anywhere a webhook named.

A message on Asterisk is a file in the trunk's message_dir (read where SafeCall sees that folder, message_dir_here);
a path outside it is refused. A Twilio message is fetched from the trunk's own API address (Twilio, or the local fake
its api_base_url names) with the trunk's credentials, by the recording's ids alone.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.error import URLError
from urllib.request import Request, urlopen

from sqlmodel import select

from safecall.domain import TaskKind
from safecall.settings import Instance
from safecall.store import Database, HelpCall, VisitTask
from safecall.telephony.twilio.refs import TWILIO_REF

TWILIO_API = "https://api.twilio.com"
FETCH_TIMEOUT = 10.0
CHUNK = 64 * 1024


class MessageMissing(Exception):
    """No such message for the task, or its recording cannot be read."""


def message_audio(instance: Instance, db: Database, task: VisitTask, help_id: int) -> Iterator[bytes]:
    """The WAV of message `help_id` of `task` (a call-back task of the same run and person), in chunks to stream.

    The recording is opened before this returns (MessageMissing if it cannot be),
    so a page gets a 404, not a cut stream."""
    with db.session() as session:
        row = session.exec(
            select(HelpCall).where(
                HelpCall.id == help_id, HelpCall.run_id == task.run_id, HelpCall.person_id == task.person_id
            )
        ).first()
    if task.kind != TaskKind.CALLBACK or row is None or not row.message_ref:
        raise MessageMissing("no such message")
    twilio = TWILIO_REF.fullmatch(row.message_ref)
    return _from_twilio(instance, *twilio.groups()) if twilio else _from_pbx(instance, row.message_ref)


def _trunks(instance: Instance, kind: str) -> list:
    return [config for config in instance.trunks.trunks.values() if getattr(config, "type", None) == kind]


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    with source:
        while chunk := source.read(CHUNK):
            yield chunk


def _from_pbx(instance: Instance, ref: str) -> Iterator[bytes]:
    path = Path(ref)
    for config in _trunks(instance, "asterisk"):
        there = Path(config.message_dir)
        if path.parent != there or path.suffix != ".wav":  # only a file the trunk's RECORD FILE wrote
            continue
        here = Path(config.message_dir_here or config.message_dir)
        try:
            return _chunks((here / path.name).open("rb"))
        except OSError as exc:
            raise MessageMissing(f"cannot read {path.name}: {exc.strerror}") from exc
    raise MessageMissing("the message is in no trunk's message_dir")


def _from_twilio(instance: Instance, account_sid: str, recording_sid: str) -> Iterator[bytes]:
    for config in _trunks(instance, "twilio"):
        if config.account_sid != account_sid:
            continue
        base = (config.api_base_url or TWILIO_API).rstrip("/")
        credentials = base64.b64encode(f"{account_sid}:{config.auth_token.resolve(instance.environ)}".encode()).decode()
        request = Request(
            f"{base}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.wav",
            headers={"Authorization": f"Basic {credentials}"},
        )
        try:
            return _chunks(urlopen(request, timeout=FETCH_TIMEOUT))
        except (URLError, OSError) as exc:
            raise MessageMissing(f"Twilio did not give the recording: {exc}") from exc
    raise MessageMissing("no trunk has the recording's account")
