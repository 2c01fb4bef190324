"""The command line: argument parsing and the offline commands (`review`,
`check`, `audit`).

The top: may import every package; nothing imports it."""
