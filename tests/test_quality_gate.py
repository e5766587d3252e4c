"""The quality gate as pure functions: checks, per-task defaults, schemas, bad specs."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from contract.schemas import QualitySpec, parse_extraction_job, parse_job
from worker import output_schemas, quality
from worker.errors import InvalidJob, SchemaRegistryError

GOOD = "Paris is the capital of France, on the Seine."
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


class Invoice(BaseModel):
    number: str
    total: float


def spec(**fields: object) -> QualitySpec:
    return QualitySpec.model_validate(fields)


def test_a_plain_answer_passes_the_conversation_defaults() -> None:
    assert quality.check(GOOD, None).ok


@pytest.mark.parametrize(("answer", "check"), [
    ("", "too_short"),
    ("OK.", "too_short"),
    ("I'm sorry, but I can't help with that request.", "refusal"),
    ("I’m not sure what you mean by that.", "refusal"),
    ("Je ne sais pas répondre à cette question.", "refusal"),
    ("Lo siento, no puedo ayudar con eso.", "refusal"),
    ("Ich weiß nicht, was gemeint ist.", "refusal"),
    ("Well...  I  DON'T   KNOW, honestly.", "refusal"),
])
def test_poor_answers_fail_the_conversation_defaults(answer: str, check: str) -> None:
    verdict = quality.check(answer, None)
    assert (verdict.ok, verdict.check) == (False, check)
    assert verdict.reason


def test_refusal_phrases_match_whole_words_only() -> None:
    # "I do not knowingly" is not "I do not know".
    assert quality.check("Antonio don't knowledge-share: I do not knowingly lie here.", None).ok


def test_a_refusal_past_the_opening_window_is_not_a_refusal() -> None:
    answer = GOOD * 10 + " Beyond this point I don't know more."
    assert quality.check(answer, None).ok


def test_job_settings_replace_the_defaults() -> None:
    assert quality.check("OK.", spec(min_chars=0)).ok
    assert quality.check("I don't know.", spec(refusal_phrases=[])).ok
    verdict = quality.check("Yes indeed, certainly.", spec(refusal_phrases=["certainly"]))
    assert verdict.check == "refusal"
    assert quality.check("", spec(enabled=False)).ok


def test_must_match_and_must_not_match_patterns() -> None:
    rules = spec(must_match=[r"\bParis\b"], must_not_match=[r"(?i)lyon"])
    assert quality.check(GOOD, rules).ok
    assert quality.check("Berlin is a city in Germany.", rules).check == "must_match"
    assert quality.check("Paris, not Lyon, is the capital.", rules).check == "must_not_match"


def test_json_answer_parses_and_validates_against_the_job_schema() -> None:
    rules = spec(json_schema=PERSON)
    verdict = quality.check('```json\n{"name": "Ada", "age": 36}\n```', rules)
    assert verdict.ok and verdict.parsed == {"name": "Ada", "age": 36}
    broken = quality.check('{"name": "Ada", "age": ', rules)
    assert broken.check == "invalid_json" and "not JSON" in broken.reason
    wrong = quality.check('{"name": "Ada", "age": "old"}', rules)
    assert wrong.check == "schema_mismatch" and wrong.reason.startswith("age:")


def test_refusal_in_place_of_json_is_a_refusal_and_inside_json_is_data() -> None:
    rules = spec(json_output=True)
    assert quality.check("I'm sorry, but I can't help with that.", rules).check == "refusal"
    assert quality.check("OK", rules).check == "too_short"
    verdict = quality.check(json.dumps({"quote": "I don't know, said the witness."}), rules)
    assert verdict.ok


def test_extraction_defaults_require_json() -> None:
    verdict = quality.check("Here is what I found: nothing.", None, defaults=quality.EXTRACTION)
    assert verdict.check == "invalid_json"
    assert quality.check("{}", None, defaults=quality.EXTRACTION).ok


def test_a_registered_pydantic_model_validates_and_normalises_the_answer() -> None:
    output_schemas.register("test-invoice", Invoice)
    rules = spec(schema_name="test-invoice")
    verdict = quality.check('{"number": "A-1", "total": "12.5"}', rules)
    assert verdict.ok and verdict.parsed == {"number": "A-1", "total": 12.5}
    assert quality.check('{"number": "A-1"}', rules).check == "schema_mismatch"
    assert quality.request_schema(rules) == Invoice.model_json_schema()


def test_an_unregistered_schema_name_is_an_invalid_job() -> None:
    with pytest.raises(InvalidJob) as caught:
        quality.request_schema(spec(schema_name="nobody-registered-this"))
    assert caught.value.code == "unknown_schema"


def test_schemas_load_from_the_setting_value() -> None:
    assert output_schemas.load(" invoice-from-env = tests.test_quality_gate:Invoice ,") == ["invoice-from-env"]
    assert output_schemas.get("invoice-from-env") is Invoice
    with pytest.raises(SchemaRegistryError, match="No module named"):
        output_schemas.load("nowhere.at_all:Thing")
    with pytest.raises(SchemaRegistryError, match="not a pydantic model"):
        output_schemas.load("tests.test_quality_gate:GOOD")


@pytest.mark.parametrize(("quality_spec", "code"), [
    ({"json_schema": {"type": "strng"}}, "invalid_schema"),
    ({"json_schema": {"properties": {"a": {"minLength": -1}}}}, "invalid_schema"),
    ({"must_match": ["(unclosed"]}, "invalid_pattern"),
    ({"must_not_match": ["*"]}, "invalid_pattern"),
])
def test_unusable_schema_or_pattern_in_a_job_is_an_invalid_job(quality_spec: dict, code: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job({"messages": [{"role": "user", "content": "hi"}], "quality": quality_spec})
    assert caught.value.code == code


@pytest.mark.parametrize(("payload", "code"), [
    ({"document": "", "schema": PERSON}, "empty_document"),
    ({"document": 42, "schema": PERSON}, "non_text_document"),
    ({"document": "text", "schema": {"type": "array"}}, "invalid_schema"),
    ({"document": "text", "schema": {"type": "object", "required": "name"}}, "invalid_schema"),
    ({"document": "text"}, "invalid_schema"),
])
def test_bad_extraction_jobs_have_clear_codes(payload: dict, code: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_extraction_job(payload)
    assert caught.value.code == code
