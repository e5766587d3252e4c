"""`tierline worksheet`: rows per category, review state kept in the file, changes flagged."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from operators.cli import cli
from operators.worksheet import read_state


def _trace(tmp_path: Path) -> Path:
    trace = tmp_path / "t.csv"
    rows = [f"{1700000000 + i},{300 + (i % 7) * 900 if i % 3 else 5000},{60 + i % 50},{('chat', 'code')[i % 3 == 0]}"
            for i in range(600)]
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens,Category\n" + "\n".join(rows) + "\n")
    return trace


def test_worksheet_rows_review_and_flags_after_a_price_change(tmp_path: Path) -> None:
    runner = CliRunner()
    trace, sheet = _trace(tmp_path), tmp_path / "worksheet.md"
    # given a worksheet written and reviewed
    first = runner.invoke(cli, ["worksheet", str(trace), "-o", str(sheet)])
    assert first.exit_code == 0, first.output
    assert "never reviewed" in sheet.read_text()
    reviewed = runner.invoke(cli, ["worksheet", str(trace), "-o", str(sheet), "--review", "all"])
    assert reviewed.exit_code == 0, reviewed.output
    state = read_state(sheet)
    assert set(state) == {"chat", "code"} and state["code"]["reviewed_primary"] == "mistral-medium-latest"
    # when a threshold is edited by hand and the small model's price changes
    sheet.write_text(sheet.read_text().replace("threshold = 0.93", "threshold = 0.5", 1))
    scenario = tmp_path / "prices.toml"
    scenario.write_text('[prices.mistral-small-latest]\nusd_per_mtok_in = 0.1\n')
    refreshed = runner.invoke(cli, ["worksheet", str(trace), "-o", str(sheet), "--scenario", str(scenario)])
    # then the rows that use it are flagged, the other is not, and the edit is kept
    assert refreshed.exit_code == 0, refreshed.output
    text = sheet.read_text()
    chat_row = next(line for line in text.splitlines() if line.startswith("| chat "))
    code_row = next(line for line in text.splitlines() if line.startswith("| code "))
    assert "prices" in chat_row and "prices" not in code_row
    assert read_state(sheet)["chat"]["threshold"] == 0.5
