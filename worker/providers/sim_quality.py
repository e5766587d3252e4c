"""How often a simulated model's answer passes the quality gate, as a function of the
conversation's length and category, and the deterministic draw that decides one answer.

One definition, used by the simulated provider (which answers poorly when the draw says
so) and by `tierline replay` (which predicts the same answers offline): a job replayed
through real workers and through the calculator gets the same verdicts.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field


class PassCurve(BaseModel):
    """Probability that an answer passes: `base`, plus `per_1k_tokens` for every thousand
    routed tokens (negative: longer conversations fail more), plus the category's own
    adjustment (`categories`), clamped to [`floor`, 1]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base: float = Field(default=1.0, ge=0, le=1)
    per_1k_tokens: float = Field(default=0.0, le=1)
    floor: float = Field(default=0.0, ge=0, le=1)
    categories: dict[str, float] = Field(default_factory=dict)

    def pass_rate(self, tokens: int, category: str | None = None) -> float:
        """Probability that an answer to a conversation of `tokens` routed tokens passes."""
        rate = self.base + self.per_1k_tokens * tokens / 1000
        if category is not None:
            rate += self.categories.get(category, 0.0)
        return min(1.0, max(self.floor, rate))


def draw(seed: int, job_id: str, model: str) -> float:
    """A uniform number in [0, 1) fixed by (`seed`, `job_id`, `model`): the answer of that
    model to that job passes when the draw is below its pass rate."""
    digest = hashlib.blake2b(f"{seed}\x00{job_id}\x00{model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64
