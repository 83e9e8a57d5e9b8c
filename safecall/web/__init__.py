"""The web app for visit teams and officers (`safecall web`): safecall/web/app.py builds and serves it."""

from __future__ import annotations

from safecall.web.app import create_web_app, serve

__all__ = ["create_web_app", "serve"]
