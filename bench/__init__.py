"""Benchmarks of snapshot-webhook: `scripts/bench` runs them all (see docs/performance.md)."""
