"""The twilio SDK's REST client as SafeCall makes it: for the trunk's calls and for texts sent through Twilio.

Apart from the trunk so that sending a text needs no call machinery (webhooks, the IVR conversation).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from safecall.telephony.twilio.config import TwilioTrunkConfig


class HttpClient(TwilioHttpClient):
    """The SDK's client, remembering the last answer's Retry-After (TwilioRestException does not carry headers)."""

    retry_after: str | None = None

    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        self.retry_after = (response.headers or {}).get("Retry-After")
        return response


class LocalTwilioHttpClient(HttpClient):
    """Sends every API call to a local fake (drills and tests): rewrites the scheme and host."""

    def __init__(self, base_url: str):
        super().__init__()
        self._base = urlsplit(base_url)

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = urlunsplit((self._base.scheme, self._base.netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


def make_client(config: TwilioTrunkConfig, auth_token: str) -> Client:
    http_client = LocalTwilioHttpClient(config.api_base_url) if config.api_base_url else HttpClient()
    return Client(config.account_sid, auth_token, http_client=http_client)
