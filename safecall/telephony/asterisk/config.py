"""The settings of an Asterisk trunk ([trunks.NAME] with type = "asterisk")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from safecall.configfiles import SecretRef, Strict


class AsteriskTrunkConfig(Strict):
    type: Literal["asterisk"]
    ami_host: str = "127.0.0.1"
    ami_port: int = Field(default=5038, ge=1, le=65535)
    ami_username: str = Field(min_length=1)
    ami_secret: SecretRef
    # Dial string; {number} is the number in `number_format`.
    channel: str = "PJSIP/{number}@carrier"
    number_format: Literal["e164", "national"] = "national"
    caller_id: str = ""
    channels: int = Field(default=30, ge=1, le=10_000)
    calls_per_second: float = Field(default=5.0, gt=0, le=1000)
    ring_timeout_seconds: int | None = Field(default=None, ge=5, le=120)  # caps the campaign's
    context: str = "safecall-agi"
    fastagi_listen: str = "127.0.0.1:4573"
    # Where Asterisk's FastAGI connections come from (a host name or address); any other peer is refused.
    # Default: ami_host. Set it when Asterisk reaches SafeCall from another address than the one AMI is on.
    pbx_address: str | None = None
    # How long a FastAGI session waits for AMI to say its call was answered before it is refused.
    answer_wait_seconds: float = Field(default=2.0, gt=0, le=10)
    # Call-backs from people who are not due (or unknown numbers) are put through to this dial string after a
    # short message, e.g. "PJSIP/0221480000@carrier"; empty: the message only.
    office_dial: str = ""
    # A call for help (a flow with [help] turned on) is put through to the duty officer with this dial string, e.g.
    # "PJSIP/0221480001@carrier"; empty: the flow's help.transfer_number through `channel`.
    help_dial: str = ""
    # Where Asterisk writes the messages people leave (RECORD FILE, its own path), and where SafeCall reads them for
    # the officer's page (the same folder mounted here; default: the same path, SafeCall on the PBX's machine).
    message_dir: str = "/var/spool/asterisk/safecall-messages"
    message_dir_here: str | None = None
    prompt_dir: str = "safecall"
    ping_interval_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("channel")
    @classmethod
    def _has_number(cls, value: str) -> str:
        if "{number}" not in value:
            raise ValueError("must contain {number}, e.g. PJSIP/{number}@carrier")
        return value

    @field_validator("message_dir")
    @classmethod
    def _plain_absolute_path(cls, value: str) -> str:
        # RECORD FILE takes it as one word: an absolute path without spaces or quotes.
        if not value.startswith("/") or any(c.isspace() or c in "\"'" for c in value):
            raise ValueError(
                "must be an absolute folder path without spaces or quotes, e.g. /var/spool/asterisk/safecall-messages"
            )
        return value.rstrip("/")

    @field_validator("fastagi_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:4573")
        return value

    def pbx_host(self) -> str:
        return self.pbx_address or self.ami_host

    def fastagi_address(self) -> tuple[str, int]:
        host, _, port = self.fastagi_listen.rpartition(":")
        return host, int(port)
