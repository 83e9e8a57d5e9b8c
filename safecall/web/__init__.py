"""The web app for visit teams and officers (`safecall web`)."""

from __future__ import annotations

from safecall.errors import ConfigError
from safecall.services import Services
from safecall.web.app import ARGON2_SLOTS, create_web_app

# Threads that serve pages (the routes that are not async). anyio's default is 40, but the database pool has 15
# connections (SQLAlchemy's 5 + 10 overflow): under load the 16th thread waited for one and failed after 30 s. Pages
# are Python under one GIL, so more threads only make each page wait longer; logins have ARGON2_SLOTS of their own.
PAGE_THREADS = 8
DATABASE_CONNECTIONS = 15
assert PAGE_THREADS + ARGON2_SLOTS <= DATABASE_CONNECTIONS


def with_page_threads(app, threads: int):
    """The ASGI app, with the server's thread limit set once its event loop runs (a limit belongs to a loop)."""
    async def app_with_threads(scope, receive, send):
        if scope["type"] == "lifespan":
            import anyio.to_thread

            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        await app(scope, receive, send)
    return app_with_threads


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
    uvicorn.run(with_page_threads(app, PAGE_THREADS), host=host or web.host, port=port or web.port, proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                server_header=False, log_level="info", log_config=uvicorn_log_config(("uvicorn", "uvicorn.error", "uvicorn.access", "safecall")))


__all__ = ["create_web_app", "serve"]
