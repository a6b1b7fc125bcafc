"""Correlation: signal groups, incident candidates, the severity policy and noise control."""
