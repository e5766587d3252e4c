"""One vocabulary of failures: the enums in `contract.codes`, the README's table, the code."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from contract.codes import KIND, ErrorCode, FailureKind, kind_of
from tests.support import ROOT

PACKAGES = ("contract", "producers", "worker", "tasks", "operators")


def readme_failure_table() -> dict[str, set[str]]:
    """Kind → the codes its row lists, from the README's failure table."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Failure kinds and guarantees"):]
    section = section[:section.index("\n## ", 1)]
    rows: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = set(re.findall(r"`([a-z_]+)`", cells[2]))
    return rows


def code_literals() -> set[tuple[str, str]]:
    """Every string literal given where a code goes: a `code=` or `error_code=` argument, a
    `code = ...` assignment, the default of a parameter named `code`, or a positional argument
    of a same-module function in its `code` parameter's place."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            found |= {(f"{path.relative_to(ROOT)}:{v.lineno}", v.value) for v in _code_values(tree)
                      if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return found


def _code_values(tree: ast.Module) -> Iterator[ast.expr]:
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    code_place = {f.name: [a.arg for a in f.args.args].index("code") for f in functions
                  if "code" in [a.arg for a in f.args.args]}
    for f in functions:
        yield from _defaults_of_code(f.args)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from (k.value for k in node.keywords if k.arg in ("code", "error_code"))
            place = code_place.get(node.func.id) if isinstance(node.func, ast.Name) else None
            if place is not None and place < len(node.args):
                yield node.args[place]
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets):
            yield node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == "code":
            yield from [node.value] if node.value is not None else []


def _defaults_of_code(args: ast.arguments) -> Iterator[ast.expr]:
    positional = args.posonlyargs + args.args
    for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True):
        if arg.arg == "code":
            yield default
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.arg == "code" and default is not None:
            yield default


def test_every_code_has_exactly_one_kind() -> None:
    assert set(KIND) == set(ErrorCode)
    assert {kind_of(code.value) for code in ErrorCode} == set(FailureKind)
    assert kind_of("not_a_code") is None


def test_readme_failure_table_lists_every_kind_with_exactly_its_codes() -> None:
    table = readme_failure_table()
    assert list(table) == [kind.value for kind in FailureKind]
    for kind in FailureKind:
        assert table[kind.value] == {code.value for code in ErrorCode if KIND[code] is kind}, kind


def test_the_code_names_every_failure_code_through_the_enum() -> None:
    # A job's failure code is spelled `ErrorCode.X`, never as a string. Exception codes that
    # never reach a result (a worker refusing to start, a batch refused before sending) are
    # outside the job vocabulary and may stay strings.
    outside = {"error", "provider_error", "catalog_invalid", "schemas_invalid", "batch_rejected", "bad_workload",
               "overlay_invalid", "duplicate_custom_id", "corrupt_output"}
    assert not outside & {code.value for code in ErrorCode}
    strays = {(where, value) for where, value in code_literals() if value not in outside}
    assert strays == set()


def test_the_scan_finds_a_code_in_each_place_a_code_goes() -> None:
    source = """
def refuse(task, code="malformed_message"): ...
def over(code, what): ...
def later(*, code="duplicate"): ...
ErrorInfo(code="worker_lost")
Attempt(error_code="out_of_time")
over("job_too_large", "the job")
code = "quality"
code: str = "conflict"
over(ErrorCode.JOB_TOO_LARGE, "named through the enum")
"""
    found = {v.value for v in _code_values(ast.parse(source)) if isinstance(v, ast.Constant)}
    assert found == {"malformed_message", "duplicate", "worker_lost", "out_of_time", "job_too_large",
                     "quality", "conflict"}


def test_codes_are_plain_strings_on_the_wire() -> None:
    from contract.schemas import ErrorInfo

    info = ErrorInfo(code=ErrorCode.OUT_OF_TIME, message="m")
    assert info.model_dump(mode="json") == {"code": "out_of_time", "message": "m"}
