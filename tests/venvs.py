"""Fresh virtualenvs with tierline installed from this repository, as a user installs it.

The install is a real `pip install` (not editable) of a copy of the source, so the build
leaves nothing in the work tree; packages come through pip's usual configuration and its
shared cache, from the package registry only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

from tests.support import ROOT

# What a source distribution of tierline holds.
SOURCE = ("pyproject.toml", "README.md", "contract", "results", "producers", "worker", "tasks", "operators")


def copy_source(dest: Path) -> Path:
    """A copy of the installable source under `dest` (without caches)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCE:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                            dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest / name)
    return dest


def install(path: Path, requirement: str, *, timeout_s: float = 600) -> Path:
    """A new virtualenv at `path` with `requirement` installed; its python.

    requirement: what to give pip, e.g. the source folder, or ``"<folder>[worker]"``.
    """
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    python = path / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement],
                   env=env, check=True, timeout=timeout_s, capture_output=True)
    return python


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without the repository on the path or tierline's settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("TIERLINE_") and k != "REDIS_URL"}
    env.update(extra)
    return env
