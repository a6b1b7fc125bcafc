"""Telemetry routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["telemetry"])

# OTLP/HTTP lives at the path the OTLP specification gives, outside /api/v1.
otlp_router = APIRouter(tags=["otlp"])
