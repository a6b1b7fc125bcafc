"""Signals: alerts, findings, reports."""
