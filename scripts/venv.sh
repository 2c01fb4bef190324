# Sourced by scripts/serve and scripts/test: make .venv and install the project into it.
# Usage: ensure_venv [EXTRA]   (EXTRA is an optional-dependency group, such as "test")
ensure_venv() {
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "snapshot-webhook needs Python 3.11 or newer; set PYTHON to one ($python is not)" >&2
        exit 2
    fi
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    fi
    local target="."
    if [ -n "${1:-}" ]; then target=".[$1]"; fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
}
