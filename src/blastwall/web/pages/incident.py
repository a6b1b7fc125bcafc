"""Web interface routes: incident (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
