"""Web interface routes: evidence (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
