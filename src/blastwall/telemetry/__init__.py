"""Telemetry ingestion: OTLP traces normalised into interactions."""
