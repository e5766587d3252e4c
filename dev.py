#!/usr/bin/env python3
"""The two commands, on a fresh machine with Python 3.11+ and nothing else.

    python3 dev.py demo    # set up .venv, then a worker routes ~200 sample conversations
    python3 dev.py test    # set up .venv, then lint (ruff, mypy) and run the test suite

Set-up is idempotent: .venv is created once and re-synced when pyproject.toml changes.
Any further arguments go to the command (`python3 dev.py test -k plan`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".tierline-installed"


def ensure_venv() -> Path:
    python = BIN / "python"
    if not python.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != want:
        print("installing tierline and its dependencies into .venv ...", flush=True)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
        STAMP.write_text(want)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if command == "setup":
        return 0
    if command == "demo":
        return subprocess.call([str(BIN / "tierline"), "demo", *rest], cwd=ROOT, env=env)
    if not rest:  # the whole check, as CI runs it; `dev.py test -k plan` runs only pytest
        for lint in (["ruff", "check", "."], ["mypy"]):
            code = subprocess.call([str(BIN / lint[0]), *lint[1:]], cwd=ROOT, env=env)
            if code:
                return code
    return subprocess.call([str(python), "-m", "pytest", "-q", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
