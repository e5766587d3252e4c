"""Token counting: exact Mistral counts, the per-message overhead, the no-encode bound."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import mistral_common
import pytest
from mistral_common.tokens.tokenizers.tekken import Tekkenizer

from worker.tokens import PER_MESSAGE_TOKENS, TokenCounter

O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
TEXTS = ["Hello there!", "Combien coûte un billet pour Paris ? 😊", "def f(x):\n    return x * 2\n" * 40]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    counter = TokenCounter()
    counter.warm()
    return counter


def test_counts_match_mistral_commons_own_tokenizer(counter: TokenCounter) -> None:
    path = Path(mistral_common.__file__).parent / "data" / "tekken_240911.json"
    reference = Tekkenizer.from_file(path)
    for text in TEXTS:
        assert counter.text(text) == len(reference.encode(text, bos=False, eos=False))


def test_conversation_count_is_content_tokens_plus_four_per_message(counter: TokenCounter) -> None:
    result = counter.conversation(TEXTS)
    assert result.exact
    assert result.tokens == sum(counter.text(t) for t in TEXTS) + PER_MESSAGE_TOKENS * len(TEXTS)


def test_small_conversation_is_bounded_by_its_utf8_size_without_encoding(counter: TokenCounter) -> None:
    texts = TEXTS[:2]
    bound = sum(len(t.encode()) for t in texts) + PER_MESSAGE_TOKENS * len(texts)
    result = counter.conversation(texts, bound=3000)
    assert not result.exact
    assert result.tokens == bound
    assert counter.conversation(texts).tokens <= result.tokens


def test_multibyte_text_near_the_bound_is_encoded(counter: TokenCounter) -> None:
    text = "é" * 1400  # 1,400 code points, 2,800 bytes
    assert counter.conversation([text, text], bound=3000).exact


def test_unknown_tokenizer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer"):
        TokenCounter("sentencepiece:nope").warm()


def test_openai_encoding_missing_from_the_cache_is_refused_without_a_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="not in tiktoken's cache") as caught:
        TokenCounter("tiktoken:o200k_base").warm()
    assert str(tmp_path) in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_tiktoken_cache_dir_turns_the_cache_off_and_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the encoding's file where tiktoken's default cache would be, and
    # TIKTOKEN_CACHE_DIR="", which tiktoken reads as "no cache: download on every load"
    default_cache = tmp_path / "data-gym-cache"
    default_cache.mkdir()
    (default_cache / hashlib.sha1(O200K_URL.encode()).hexdigest()).write_bytes(b"cached")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    # Then the encoding is refused rather than downloaded
    with pytest.raises(ValueError, match="not in tiktoken's cache"):
        TokenCounter("tiktoken:o200k_base").warm()
