"""Token counting, the routing signal: offline, built once per process.

count = sum over messages of tokens(content) + 4 per message (role and separators).

The default vocabulary is Mistral's Tekken, shipped inside mistral-common and loaded
through tiktoken (exact for the default Mistral tiers). ``tiktoken:<encoding>`` uses an
OpenAI encoding, only if it is already in tiktoken's local cache: nothing downloads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

import tiktoken

PER_MESSAGE_TOKENS = 4


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class TokenCount:
    """A routed token count; `exact` is False when it is the UTF-8 byte bound."""

    tokens: int
    exact: bool


class TokenCounter:
    """Counts conversation tokens; the encoder loads lazily, once, thread-safely."""

    def __init__(self, spec: str = "mistral:tekken_240911") -> None:
        self.spec = spec
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = load_encoder(self.spec)
        return self._encoder

    def warm(self) -> None:
        """Load the vocabulary now (call before fork so children share it)."""
        _ = self.encoder

    def text(self, text: str) -> int:
        """Tokens in `text`."""
        return len(self.encoder.encode_ordinary(text))

    def conversation(self, contents: Sequence[str], *, bound: int | None = None) -> TokenCount:
        """Routed token count of message `contents`.

        bound: when the conversation's UTF-8 size plus the per-message overhead is at
        most this many tokens, return that size without encoding: every token is at
        least one byte, so the true count cannot exceed it.
        """
        overhead = PER_MESSAGE_TOKENS * len(contents)
        if bound is not None:
            size = overhead + sum(len(c) for c in contents)
            # len() counts code points; each is 1 to 4 bytes, so check bytes only when close.
            if size <= bound:
                size = overhead + sum(len(c.encode("utf-8")) for c in contents)
                if size <= bound:
                    return TokenCount(size, exact=False)
        encode = self.encoder.encode_ordinary
        return TokenCount(overhead + sum(len(encode(c)) for c in contents), exact=True)


def load_encoder(spec: str) -> Encoder:
    """Build the encoder named by `spec`: ``mistral:<vocab>`` or ``tiktoken:<encoding>``."""
    family, _, name = spec.partition(":")
    if family == "mistral":
        return _mistral_encoding(name or "tekken_240911")
    if family == "tiktoken":
        _require_cached(name)
        return tiktoken.get_encoding(name)
    raise ValueError(f"unknown tokenizer {spec!r}: use 'mistral:<vocab>' or 'tiktoken:<name>'")


# tiktoken fetches these files on first use; tierline only reads them from its cache.
_OPENAI_FILES = {
    name: f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    for name in ("r50k_base", "p50k_base", "cl100k_base", "o200k_base")
}


def tiktoken_cache_dir() -> str:
    """Where tiktoken keeps downloaded encodings (its own rule); "" when caching is off."""
    for name in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if name in os.environ:
            return os.environ[name]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _require_cached(name: str) -> None:
    """Refuse an OpenAI encoding that is not already cached: nothing downloads at run time."""
    url = _OPENAI_FILES.get(name)
    if url is None:
        raise ValueError(f"unknown OpenAI encoding {name!r}; known: {sorted(_OPENAI_FILES)}")
    # An empty cache directory turns tiktoken's cache off: it would download every time.
    cache = tiktoken_cache_dir()
    path = os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())
    if not cache or not os.path.exists(path):
        raise ValueError(
            f"OpenAI encoding {name!r} is not in tiktoken's cache ({tiktoken_cache_dir()}) and tierline "
            "never downloads at run time: put the file there (TIKTOKEN_CACHE_DIR) or use 'mistral:tekken_240911'"
        )


def _mistral_encoding(name: str) -> tiktoken.Encoding:
    """Mistral's Tekken vocabulary from mistral-common's data folder, as a tiktoken Encoding."""
    data = resources.files("mistral_common").joinpath("data", f"{name}.json")
    spec = json.loads(data.read_text("utf-8"))
    config = spec["config"]
    size = config["default_vocab_size"] - config["default_num_special_tokens"]
    ranks = {base64.b64decode(t["token_bytes"]): t["rank"] for t in spec["vocab"][:size]}
    return tiktoken.Encoding(
        name=name, pat_str=config["pattern"], mergeable_ranks=ranks, special_tokens={}
    )
