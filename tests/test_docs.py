"""The repository explains itself: the architecture page exists, is linked, and names real files."""

from __future__ import annotations

import re

from tests.support import ROOT


def test_readme_links_the_architecture_page_and_nothing_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/ARCHITECTURE.md)" in readme
    assert "../" not in "".join(re.findall(r"\]\(([^)]*)\)", readme))


def test_every_path_the_architecture_page_names_exists() -> None:
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    paths = set(re.findall(r"\b((?:contract|producers|worker|tasks|operators|tests)/[\w/]+\.py)\b", page))
    assert paths, "the page names the modules to read"
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []
