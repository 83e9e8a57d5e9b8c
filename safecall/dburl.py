"""Database URLs shown to people: every password in them masked."""

from __future__ import annotations

import re

# Query parameters of a database URL that hold a secret:
# libpq takes ?password= and ?sslpassword= as well as user:PASSWORD@.
SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """Every password written in a database URL: in its userinfo and in its query parameters."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return []
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if SECRET_QUERY_KEY.search(key):
            found += [v for v in ((value,) if isinstance(value, str) else value) if v]
    return found


def mask_url(url: str) -> str:
    """The URL with every password in it shown as ***, wherever it sits."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return "<unparseable url>"
    query = {key: ("***" if SECRET_QUERY_KEY.search(key) else value) for key, value in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")
