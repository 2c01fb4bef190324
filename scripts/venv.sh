# Sourced by the scripts: make .venv and install the project into it.
# Usage: ensure_venv [EXTRA]   (EXTRA is an optional-dependency group, such as "test")
# The install is skipped when pyproject.toml and EXTRA are what .venv was made from.
ensure_venv() {
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "snapshot-webhook needs Python 3.11 or newer; set PYTHON to one ($python is not)" >&2
        exit 2
    fi
    local target="." extra="${1:-}"
    if [ -n "$extra" ]; then target=".[$extra]"; fi
    local stamp
    stamp="$(cksum < pyproject.toml) $extra"
    if [ -x .venv/bin/python ] && [ -f .venv/.installed ] \
        && grep -qxF "$stamp" .venv/.installed 2>/dev/null; then
        return 0
    fi
    echo "installing snapshot-webhook${extra:+ and its $extra tools} into .venv/ (once; about a minute)" >&2
    if [ ! -x .venv/bin/python ]; then
        "$python" -m venv .venv
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
    # a test install includes the plain one, so both are recorded
    { echo "$(cksum < pyproject.toml) "; echo "$stamp"; } > .venv/.installed
}
