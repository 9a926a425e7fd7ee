"""Prometheus text exposition of the archive's state."""
