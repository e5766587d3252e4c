"""A file's text: plain text and Markdown as they are, HTML as text, PDF through pypdf.

The reader is chosen by the file's suffix (``.pdf``; ``.html``, ``.htm``, ``.xhtml``;
anything else is read as text). A file that is not what its suffix says, or has no
text, raises `Unreadable` with its code.
"""

from __future__ import annotations

import io
from pathlib import Path

from producers.documents.errors import DocumentError, Unreadable
from producers.documents.html_text import html_text

HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
_SNIFF_BYTES = 8192
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_text(path: Path, *, max_bytes: int) -> str:
    """The text of the document at `path`; raises `Unreadable`.

    max_bytes: the largest file read, and the largest text (UTF-8) a document may have.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Unreadable(DocumentError.TOO_LARGE, f"{size:,} bytes, more than the limit of {max_bytes:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(DocumentError.UNREADABLE, f"cannot read the file: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = pdf_text(data)
    else:
        text = decoded(data)
        if suffix in HTML_SUFFIXES:
            text = html_text(text)
    return checked(text, max_bytes=max_bytes)


def checked(text: str, *, max_bytes: int) -> str:
    """`text` if it has something to extract and is within `max_bytes` (UTF-8)."""
    if not text.strip():
        raise Unreadable(DocumentError.EMPTY, "the document has no text")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise Unreadable(DocumentError.TOO_LARGE, f"{size:,} bytes of text, more than the limit of {max_bytes:,}")
    return text


def decoded(data: bytes) -> str:
    """`data` as text: UTF-8 (a byte-order mark allowed) or UTF-16 with its mark."""
    if data.startswith(_UTF16_BOMS):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise Unreadable(DocumentError.UNDECODABLE, f"not valid UTF-16: {exc.reason}") from exc
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise Unreadable(DocumentError.BINARY, "a binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(DocumentError.UNDECODABLE, f"not valid UTF-8 at byte {exc.start}: {exc.reason}") from exc


def pdf_text(data: bytes) -> str:
    """The text layer of a PDF, page after page (pypdf, the ``pdf`` extra)."""
    try:
        import pypdf
    except ImportError as exc:
        raise Unreadable(DocumentError.UNSUPPORTED, "PDF needs pypdf: pip install 'tierline[pdf]'") from exc
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Unreadable(DocumentError.UNREADABLE, "an encrypted PDF")
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except Unreadable:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file: each one is "unreadable"
        raise Unreadable(DocumentError.UNREADABLE, f"not a readable PDF: {type(exc).__name__}") from exc
