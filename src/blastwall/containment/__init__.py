"""Containment: the control plane AI systems obey, actions under incidents, approvals.

The guard that AI applications embed lives apart, in `blastwall_guard` (`guard/`)."""
