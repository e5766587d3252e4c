"""Pydantic models a test worker registers by name (TIERLINE_SCHEMAS)."""

from __future__ import annotations

from pydantic import BaseModel


class Invoice(BaseModel):
    number: str
    total: float
    paid: bool
