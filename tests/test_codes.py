"""One vocabulary of failures: the enums in `contract.codes`, the README's table, the code."""

from __future__ import annotations

import ast
import re

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
    """Every string literal given as a `code=` argument or a `code = ...` class attribute."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                values: list[ast.expr] = []
                if isinstance(node, ast.Call):
                    values = [k.value for k in node.keywords if k.arg == "code"]
                elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code"
                                                          for t in node.targets):
                    values = [node.value]
                found |= {(f"{path.relative_to(ROOT)}:{v.lineno}", v.value) for v in values
                          if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return found


def test_every_code_has_exactly_one_kind() -> None:
    assert set(KIND) == set(ErrorCode)
    assert {kind_of(code.value) for code in ErrorCode} == set(FailureKind)
    assert kind_of("not_a_code") is None


def test_readme_failure_table_lists_every_kind_with_exactly_its_codes() -> None:
    table = readme_failure_table()
    assert list(table) == [kind.value for kind in FailureKind]
    for kind in FailureKind:
        assert table[kind.value] == {code.value for code in ErrorCode if KIND[code] is kind}, kind


def test_the_code_names_no_failure_code_outside_the_enum() -> None:
    # Exception codes that never reach a result (a worker refusing to start, a batch
    # refused before sending) are outside the job vocabulary.
    outside = {"error", "provider_error", "catalog_invalid", "schemas_invalid", "batch_rejected", "bad_workload",
               "overlay_invalid", "duplicate_custom_id", "corrupt_output"}
    strays = {(where, value) for where, value in code_literals()
              if value not in outside and kind_of(value) is None}
    assert strays == set()


def test_codes_are_plain_strings_on_the_wire() -> None:
    from contract.schemas import ErrorInfo

    info = ErrorInfo(code=ErrorCode.OUT_OF_TIME, message="m")
    assert info.model_dump(mode="json") == {"code": "out_of_time", "message": "m"}
