"""Extraction's pure part: chunks that fit, merge rules the schema declares, prompts."""

from __future__ import annotations

import random

import pytest

from worker.extraction import chunk_budget, offsets, provider_schema, split, system_prompt
from worker.merge import MergeRule, merge, merge_plan, normal_key
from worker.provenance import Span, sources_of
from worker.tokens import TokenCounter

COUNTER = TokenCounter()

CONTRACT = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "parties": {"type": "array", "items": {"type": "string"}},
        "amount": {"type": ["number", "null"]},
        "currency": {"enum": ["EUR", "USD"]},
        "signed": {"type": "boolean"},
    },
}


def document(words: int, *, seed: int = 1) -> str:
    rng = random.Random(seed)
    vocabulary = "contract party invoice amount clause delivery the of and to in réunion 東京".split()
    paragraphs = []
    while words > 0:
        size = min(words, rng.randint(20, 120))
        sentences = [" ".join(rng.choice(vocabulary) for _ in range(12)) for _ in range(size // 12 + 1)]
        paragraphs.append(". ".join(sentences) + ".")
        words -= size
    return "\n\n".join(paragraphs)


@pytest.mark.parametrize("budget", [40, 300, 1_500])
def test_split_chunks_fit_the_budget_and_join_back_to_the_document(budget: int) -> None:
    text = document(3_000)
    chunks = split(text, budget, COUNTER.text)
    assert "".join(chunks) == text
    assert all(COUNTER.text(c) <= budget for c in chunks)
    assert len(chunks) >= COUNTER.text(text) // budget
    # Greedy packing: no two neighbours would have fitted together.
    assert all(COUNTER.text(a + b) > budget for a, b in zip(chunks, chunks[1:], strict=False))


def test_split_prefers_paragraph_boundaries() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 60 for i in range(10)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = split(text, 200, COUNTER.text)
    assert all(c.lstrip("\n").startswith("Paragraph") for c in chunks)


def test_split_cuts_a_run_without_any_boundary() -> None:
    text = "x" * 5_000 + "東京" * 500
    chunks = split(text, 100, COUNTER.text)
    assert "".join(chunks) == text
    assert all(COUNTER.text(c) <= 100 for c in chunks)


def test_a_document_that_fits_is_one_chunk() -> None:
    assert split("short text", 10, COUNTER.text) == ["short text"]


def test_chunk_budget_leaves_room_for_prompt_and_output() -> None:
    assert chunk_budget(context_tokens=2_000, prompt_tokens=300, output_tokens=256) < 2_000 - 556
    assert chunk_budget(context_tokens=500, prompt_tokens=300, output_tokens=256) < 0


def test_merge_concatenates_lists_and_takes_the_first_non_empty_scalar() -> None:
    plan = merge_plan(CONTRACT)
    assert plan.problem is None
    parts = [
        {"title": "", "parties": ["ACME"], "amount": None, "currency": "EUR", "signed": False},
        {"title": "Supply contract", "parties": ["Globex", "Initech"], "amount": 1200.0,
         "currency": "USD", "signed": True},
        {"title": "Other", "parties": [], "amount": 5.0, "extra": "kept"},
    ]
    assert merge(parts, plan.rules).value == {
        "title": "Supply contract", "parties": ["ACME", "Globex", "Initech"], "amount": 1200.0,
        "currency": "EUR", "signed": False, "extra": "kept",
    }


def test_array_items_equal_once_normalised_are_kept_once_by_default() -> None:
    plan = merge_plan(CONTRACT)
    assert plan.rules["parties"] is MergeRule.UNION
    parts = [{"parties": ["ACME Corp.", "Globex"]}, {"parties": ["acme  corp", "Initech", "ｇｌｏｂｅｘ"]}]
    assert merge(parts, plan.rules).value == {"parties": ["ACME Corp.", "Globex", "Initech"]}


def test_x_merge_chooses_union_concat_or_first_per_property() -> None:
    schema = {"type": "object", "properties": {
        "all": {"type": "array", "x-merge": "concat", "items": {"type": "string"}},
        "once": {"type": "array", "x-merge": "union", "items": {"type": "object"}},
        "head": {"type": "array", "x-merge": "first", "items": {"type": "string"}},
    }}
    plan = merge_plan(schema)
    parts = [{"all": ["a"], "once": [{"n": "X", "k": None}], "head": []},
             {"all": ["a"], "once": [{"n": "x"}, {"n": "y"}], "head": ["h"]}]
    assert merge(parts, plan.rules).value == {"all": ["a", "a"], "once": [{"n": "X", "k": None}, {"n": "y"}],
                                               "head": ["h"]}


def test_normalised_keys_ignore_case_spacing_unicode_form_and_key_order() -> None:
    assert normal_key("  Café  Noir ") == normal_key("CAFÉ noir.")
    assert normal_key({"a": 1, "b": "X"}) == normal_key({"b": "x", "a": 1.0})
    assert normal_key("Acme") != normal_key("Acme Ltd")


def test_sources_say_where_each_value_stands_in_the_document() -> None:
    # Given a document of two chunks, each naming ACME, the second also Globex
    chunks = ["Intro. The buyer is ACME Corp.\n\n", "Seller: Globex; buyer  acme corp again."]
    spans = [Span(i, a, b) for i, (a, b) in enumerate(offsets(chunks))]
    document = "".join(chunks)
    answers = [{"parties": ["ACME Corp"], "title": "Intro"}, {"parties": ["Globex", "ACME Corp"], "title": "x"}]
    sources = [sources_of(a, c, s) for a, c, s in zip(answers, chunks, spans, strict=True)]
    # When they merge with sources
    merged = merge(answers, merge_plan(CONTRACT).rules, sources)
    # Then ACME is listed once, found in both chunks at its own characters
    assert merged.value["parties"] == ["ACME Corp", "Globex"]
    assert merged.sources is not None
    acme, globex = merged.sources["parties"]
    assert [s["chunk"] for s in acme] == [0, 1]
    assert [document[s["start"]:s["end"]] for s in acme] == ["ACME Corp", "acme corp"]
    assert document[globex[0]["start"]:globex[0]["end"]] == "Globex"
    assert merged.sources["title"] == [{"chunk": 0, "start": 0, "end": 5, "exact": True}]


def test_a_value_not_in_its_chunk_points_at_the_whole_chunk() -> None:
    sources = sources_of({"summary": "a paraphrase"}, "Some text.", Span(3, 100, 110))
    assert sources == {"summary": [{"chunk": 3, "start": 100, "end": 110, "exact": False}]}


def test_merge_annotations_make_nested_objects_mergeable() -> None:
    schema = {
        "type": "object",
        "properties": {
            "seller": {"type": "object", "x-merge": "first", "properties": {"name": {"type": "string"}}},
            "notes": {"type": "string", "x-merge": "concat"},
            "lines": {"type": ["array", "null"], "items": {"type": "object"}},
        },
    }
    plan = merge_plan(schema)
    assert plan.problem is None
    merged = merge([{"seller": {}, "notes": "a", "lines": None},
                    {"seller": {"name": "ACME"}, "notes": "b", "lines": [{"n": 1}]}], plan.rules).value
    assert merged == {"seller": {"name": "ACME"}, "notes": "a\nb", "lines": [{"n": 1}]}


@pytest.mark.parametrize(("schema", "words"), [
    ({"type": "object", "properties": {"seller": {"type": "object"}}}, "'seller' (object) has no merge rule"),
    ({"type": "object", "properties": {"any": {"anyOf": [{"type": "string"}]}}}, "'any' (untyped)"),
    ({"type": "object", "properties": {"n": {"type": "integer", "x-merge": "concat"}}}, "merges only lists"),
    ({"type": "object", "properties": {"n": {"type": "integer", "x-merge": "sum"}}}, "not 'sum'"),
    ({"type": "object", "properties": {"n": {"type": "string", "x-merge": "union"}}}, "\"union\" merges only lists"),
    ({"type": "object"}, "no top-level properties"),
])
def test_unmergeable_schemas_say_which_property_and_how_to_fix_it(schema: dict, words: str) -> None:
    plan = merge_plan(schema)
    assert plan.problem is not None and words in plan.problem


def test_providers_get_the_schema_without_merge_annotations() -> None:
    schema = {"type": "object", "properties": {"s": {"type": "object", "x-merge": "first"}}}
    assert provider_schema(schema) == {"type": "object", "properties": {"s": {"type": "object"}}}
    assert schema["properties"]["s"]["x-merge"] == "first"


def test_the_prompt_carries_the_schema_and_the_instructions() -> None:
    prompt = system_prompt(CONTRACT, "Amounts in euros.")
    assert '"parties":{"type":"array"' in prompt and prompt.endswith("Amounts in euros.")
