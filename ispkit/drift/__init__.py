"""Drift controls: synthesis (and, later, forensics and adjustment)."""
