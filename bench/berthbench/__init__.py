"""Berth benchmark harness (entry point: bench/run)."""
