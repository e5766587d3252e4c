"""Reading documents: text, Markdown, HTML as text, PDF, and a code for each file that is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.documents.errors import DocumentError, Unreadable
from producers.documents.html_text import html_text
from producers.documents.reading import read_text
from producers.documents.sources import DocumentSource

LIMIT = 1 << 20


def pdf_bytes(text: str) -> bytes:
    """A minimal one-page PDF whose text layer says `text` (Helvetica)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_html_is_read_as_the_text_a_reader_sees() -> None:
    markup = ("<html><head><title>t</title><style>p{}</style></head><body><h1>Supply contract</h1>"
              "<p>Between <b>Acme</b> &amp; Globex.</p><script>var x=1;</script><ul><li>one</li></ul></body></html>")
    assert html_text(markup) == "Supply contract\n\nBetween Acme & Globex.\n\none"


def test_text_markdown_html_and_pdf_files_give_their_text(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain contract between Acme and Globex.")
    (tmp_path / "b.md").write_text("# Title\n\nMarkdown *as it is*.")
    (tmp_path / "c.html").write_text("<p>Hello <i>there</i></p>")
    (tmp_path / "d.pdf").write_bytes(pdf_bytes("Acme pays Globex 1200 EUR"))
    (tmp_path / "bom.txt").write_bytes("\ufeffWith a mark".encode())
    (tmp_path / "utf16.txt").write_bytes("Zweite Fassung".encode("utf-16"))
    assert read_text(tmp_path / "a.txt", max_bytes=LIMIT) == "Plain contract between Acme and Globex."
    assert read_text(tmp_path / "b.md", max_bytes=LIMIT).startswith("# Title")
    assert read_text(tmp_path / "c.html", max_bytes=LIMIT) == "Hello there"
    assert "Acme pays Globex 1200 EUR" in read_text(tmp_path / "d.pdf", max_bytes=LIMIT)
    assert read_text(tmp_path / "bom.txt", max_bytes=LIMIT) == "With a mark"
    assert read_text(tmp_path / "utf16.txt", max_bytes=LIMIT) == "Zweite Fassung"


@pytest.mark.parametrize(("name", "content", "code"), [
    ("empty.txt", b"", DocumentError.EMPTY),
    ("blank.md", b" \n\n\t", DocumentError.EMPTY),
    ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", DocumentError.BINARY),
    ("latin1.txt", "Café résumé".encode("latin-1"), DocumentError.UNDECODABLE),
    ("broken.pdf", b"%PDF-1.4 this is not a pdf", DocumentError.UNREADABLE),
    ("big.txt", b"x" * (LIMIT + 1), DocumentError.TOO_LARGE),
])
def test_a_file_that_is_not_a_readable_document_says_why(tmp_path: Path, name: str, content: bytes,
                                                          code: DocumentError) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(Unreadable) as caught:
        read_text(tmp_path / name, max_bytes=LIMIT)
    assert caught.value.code is code


def test_a_folder_is_walked_in_name_order_without_hidden_files_or_the_runs_own_files(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("a")
    (tmp_path / ".hidden.txt").write_text("h")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("x")
    (tmp_path / "out.jsonl").write_text("")
    source = DocumentSource(tmp_path, exclude=[tmp_path / "out.jsonl"])
    assert [d.id for d in source] == ["b.txt", "sub/a.txt"]
    assert source.count() == 2


def test_a_jsonl_of_documents_gives_each_line_its_id_or_a_coded_error(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "Acme"}\nnot json\n{"id": "c"}\n{"id": 4, "text": "  "}\n')
    with DocumentSource(path) as source:
        documents = list(source)
    assert [(d.id, d.text, d.error.code if d.error else None) for d in documents] == [
        ("a", "Acme", None), ("line-2", None, "invalid_json"), ("c", None, "invalid_document"),
        ("4", None, "empty")]
