"""The web app for visit teams and officers (`safecall web`)."""

from __future__ import annotations

from safecall.errors import ConfigError
from safecall.services import Services
from safecall.web.app import create_web_app


def serve(services: Services, *, host: str | None = None, port: int | None = None) -> None:
    """Run the app under uvicorn until interrupted; 127.0.0.1 unless the settings or `host` say otherwise."""
    import uvicorn

    from safecall.events import uvicorn_log_config

    web = services.instance.settings.web
    try:
        app = create_web_app(services, web.secret_key.resolve(services.instance.environ))
    except ValueError as exc:  # a secret too short to sign sessions with
        raise ConfigError(f"config/safecall.toml: key 'web.secret_key' ({web.secret_key.describe()}): {exc}") from exc
    # Behind the TLS proxy on the same machine: the client address comes from its X-Forwarded-For.
    uvicorn.run(app, host=host or web.host, port=port or web.port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                server_header=False, log_level="info", log_config=uvicorn_log_config(("uvicorn", "uvicorn.error", "uvicorn.access", "safecall")))


__all__ = ["create_web_app", "serve"]
