"""`tierline flower`: Flower for tierline's workers, never open by accident.

It refuses to start without credentials: basic auth from ``FLOWER_BASIC_AUTH``
(``user:password``, several separated by commas), or Flower's OAuth (``FLOWER_AUTH``, the
e-mail pattern allowed in, with ``FLOWER_AUTH_PROVIDER`` and ``FLOWER_OAUTH2_KEY``,
``FLOWER_OAUTH2_SECRET``, ``FLOWER_OAUTH2_REDIRECT_URI``). It listens on 127.0.0.1
unless told another address. Flower reads the credentials from the environment itself;
they never appear on its command line.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 5555
CONFIG = Path(__file__).with_name("flowerconfig.py")
OAUTH_VARIABLES = ("FLOWER_AUTH", "FLOWER_AUTH_PROVIDER", "FLOWER_OAUTH2_KEY", "FLOWER_OAUTH2_SECRET",
                   "FLOWER_OAUTH2_REDIRECT_URI")


def credentials_problem(env: Mapping[str, str]) -> str | None:
    """Why Flower must not start with environment `env`; None when it has credentials."""
    basic = env.get("FLOWER_BASIC_AUTH", "")
    if basic:
        pairs = [pair.partition(":") for pair in basic.split(",")]
        if all(user and sep and password for user, sep, password in pairs):
            return None
        return "FLOWER_BASIC_AUTH must be user:password (several separated by commas), each part non-empty"
    missing = [name for name in OAUTH_VARIABLES if not env.get(name)]
    if not missing:
        return None
    return ("Flower shows every task of the workers: set FLOWER_BASIC_AUTH=user:password, or OAuth "
            f"({', '.join(OAUTH_VARIABLES)})")


def flower_command(*, address: str = LOOPBACK, port: int = DEFAULT_PORT) -> list[str]:
    """The command that runs Flower on the tierline app (credentials come from the environment)."""
    return [sys.executable, "-m", "celery", "-A", "worker", "flower", f"--address={address}", f"--port={port}",
            f"--conf={CONFIG}"]
