"""Coverage-guided fuzzing of snapshot-webhook (on demand; see docs/reliability.md)."""
