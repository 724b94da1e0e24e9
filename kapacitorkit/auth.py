"""Optional Kapacitor authentication: who the entrypoint, the health check and the tools are.

Off unless the user gives credentials, from the environment or a mounted secret file,
never from the repo or the image:

- ``KAPACITOR_USERNAME`` and ``KAPACITOR_PASSWORD``, or
- ``KAPACITOR_USERNAME`` and ``KAPACITOR_PASSWORD_FILE`` (e.g. a Docker secret,
  ``/run/secrets/kapacitor_password``; surrounding whitespace is ignored).

With credentials, the entrypoint turns on Kapacitor's ``[auth]`` (users in its own store)
and HTTP authentication, makes sure this user exists as an admin with this password, and
every KapacitorApi built without explicit credentials sends them (HTTP basic).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class AuthError(ValueError):
    """The credentials in the environment are incomplete or unreadable; names the variable."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password
        return f"Credentials(username={self.username!r}, password=***)"

    @property
    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


def from_env(env: Mapping[str, str] = os.environ) -> Credentials | None:
    """The user's credentials, or None when authentication is not asked for."""
    username = env.get("KAPACITOR_USERNAME", "")
    password = env.get("KAPACITOR_PASSWORD", "")
    secret = env.get("KAPACITOR_PASSWORD_FILE", "")
    if secret:
        try:
            password = Path(secret).read_text().strip()
        except OSError as exc:
            raise AuthError(f"KAPACITOR_PASSWORD_FILE: cannot read {secret}: "
                            f"{exc.strerror}") from None
    if not username and not password:
        return None
    if not username:
        raise AuthError("KAPACITOR_USERNAME: missing, but a password is set")
    if not password:
        raise AuthError("KAPACITOR_PASSWORD or KAPACITOR_PASSWORD_FILE: missing, but "
                        "KAPACITOR_USERNAME is set")
    return Credentials(username, password)
