"""The HTTPS server: the thin HTTP edge, its protocol guards, health,
metrics, logs, and the assembly of everything `serve` runs.

May import every package but `cli`."""
