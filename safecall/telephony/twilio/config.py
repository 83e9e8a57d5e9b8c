"""The settings of a Twilio trunk ([trunks.NAME] with type = "twilio")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from safecall import phones
from safecall.configfiles import SecretRef, Strict
from safecall.errors import ConfigError


class TwilioTrunkConfig(Strict):
    type: Literal["twilio"]
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretRef
    from_number: str
    # The https address Twilio reaches the webhook server at (behind a reverse proxy: the proxy's address).
    public_base_url: str
    # Where the webhook server listens; a reverse proxy forwards to it.
    listen: str = "127.0.0.1:8088"
    ring_timeout_seconds: int = Field(default=30, ge=5, le=600)
    channels: int = Field(default=10, ge=1, le=10_000)  # concurrent calls
    calls_per_second: float = Field(default=1.0, gt=0, le=1000)
    machine_detection: bool = False
    # Optional: recorded prompts served over https as {prompt_base_url}/{name}.wav, played instead of <Say>.
    prompt_base_url: str | None = None
    # The <Say> voice: an explicit Korean voice, since a voice that does not match the language can make <Say> fail.
    voice: str = "Google.ko-KR-Neural2-A"
    # Silence before the first words: people say "여보세요" first and miss the start.
    leading_pause_seconds: int = Field(default=1, ge=0, le=5)
    # What Twilio fetches when the webhook server fails (default: this server's own apology route). A static
    # TwiML document on another host (e.g. a TwiML Bin saying the apology) also covers this server being down.
    fallback_url: str | None = None
    # Call-backs from people who are not due (or unknown numbers) are connected here after a short message.
    office_number: str | None = None
    # For drills and tests only: send REST calls to this http://127.0.0.1 address instead of Twilio.
    api_base_url: str | None = None

    @field_validator("office_number")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        return phones.normalise(value) if value else value

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("api_base_url")
    @classmethod
    def _loopback_only(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise ValueError("may only point at a local fake (http://127.0.0.1:PORT)")
        return value

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"trunks.toml: listen {self.listen!r} is not HOST:PORT")
        return host, int(port)
