"""The client install against the full install: installed size and `import producers` time.

Builds two fresh virtualenvs from this repository (`pip install <repo>` and
`pip install "<repo>[worker]"`, through pip's usual configuration and shared cache),
then measures each one's site-packages (pip and setuptools left out: every virtualenv has
them) and `import producers` in a fresh interpreter: its CPU time (steadier than the wall
clock on a shared machine) and wall time, the two installs interleaved, --rounds each.

    python -m ops.bench.client_install --rounds 15 [--dir DIR: keep and reuse the venvs]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.venvs import clean_env, copy_source, install, site_packages

# Every virtualenv has these; they are not what the install brought.
BASELINE = ("pip", "setuptools", "_distutils_hack", "distutils-precedence.pth")

TIMED = ("import time; t, c = time.perf_counter(), time.process_time(); import producers; "
         "print(time.process_time() - c, time.perf_counter() - t)")
MODULES = "import sys, producers; print(len(sys.modules))"


def installed_bytes(python: Path) -> int:
    """Bytes in the environment's site-packages, without what every virtualenv has."""
    total = 0
    for entry in site_packages(python).iterdir():
        if entry.name.split("-")[0] in BASELINE or entry.name in BASELINE:
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total


def import_seconds(python: Path, cwd: Path) -> tuple[float, float]:
    """CPU and wall seconds of one `import producers` in a fresh interpreter."""
    out = subprocess.run([str(python), "-c", TIMED], cwd=cwd, env=clean_env(), capture_output=True,
                         text=True, check=True)
    cpu, wall = out.stdout.split()
    return float(cpu), float(wall)


def modules_loaded(python: Path, cwd: Path) -> int:
    out = subprocess.run([str(python), "-c", MODULES], cwd=cwd, env=clean_env(), capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--dir", type=Path, default=None, help="keep the virtualenvs here and reuse them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierline-install-") as tmp:
        base = args.dir or Path(tmp)
        source = copy_source(base / "src")
        installs = {"client": _venv(base / "client", str(source)),
                    "full (worker extra)": _venv(base / "full", f"{source}[worker]")}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in installs}
        for _ in range(args.rounds):  # interleaved: both see the same machine
            for name, python in installs.items():
                times[name].append(import_seconds(python, base))
        table = Table(title=f"client install against full install ({args.rounds} imports each, interleaved)")
        for column in ("install", "site-packages", "import CPU p50", "import wall p50", "modules loaded"):
            table.add_column(column, justify="right")
        for name, python in installs.items():
            cpu, wall = (statistics.median(t[i] for t in times[name]) for i in (0, 1))
            table.add_row(name, f"{installed_bytes(python) / 1e6:,.1f} MB", f"{cpu * 1000:.0f} ms",
                          f"{wall * 1000:.0f} ms", f"{modules_loaded(python, base):,}")
        Console().print(table)


def _venv(path: Path, requirement: str) -> Path:
    python = path / "bin" / "python"
    return python if python.exists() else install(path, requirement)


if __name__ == "__main__":
    main()
