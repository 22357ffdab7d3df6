"""Alerts (DESIGN §9): stored, deduplicated, routed by severity to the configured channels."""
