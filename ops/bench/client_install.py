"""The client install against the full install: installed size and `import producers` time.

Builds two fresh virtualenvs from this repository (`pip install <repo>` and
`pip install "<repo>[worker]"`, through pip's usual configuration and shared cache),
then measures each one's site-packages (pip and setuptools left out: every virtualenv has
them) and the time of `import producers` in a fresh interpreter (median of --rounds).

    python -m ops.bench.client_install --rounds 15
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

TIMED = "import time; t = time.perf_counter(); import producers; print(time.perf_counter() - t)"
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


def import_seconds(python: Path, cwd: Path, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        out = subprocess.run([str(python), "-c", TIMED], cwd=cwd, env=clean_env(), capture_output=True,
                             text=True, check=True)
        times.append(float(out.stdout))
    return times


def modules_loaded(python: Path, cwd: Path) -> int:
    out = subprocess.run([str(python), "-c", MODULES], cwd=cwd, env=clean_env(), capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierline-install-") as tmp:
        base = Path(tmp)
        source = copy_source(base / "src")
        installs = {"client (pip install tierline)": install(base / "client", str(source)),
                    'full (pip install "tierline[worker]")': install(base / "full", f"{source}[worker]")}
        table = Table(title=f"client install against full install ({args.rounds} imports each)")
        for column in ("install", "site-packages", "import producers p50", "min", "modules loaded"):
            table.add_column(column, justify="right")
        for name, python in installs.items():
            times = import_seconds(python, base, args.rounds)
            table.add_row(name, f"{installed_bytes(python) / 1e6:,.1f} MB", f"{statistics.median(times) * 1000:.0f} ms",
                          f"{min(times) * 1000:.0f} ms", f"{modules_loaded(python, base):,}")
        Console().print(table)


if __name__ == "__main__":
    main()
