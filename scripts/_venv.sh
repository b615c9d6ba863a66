# Sourced by scripts/demo and scripts/test: the virtualenv and its locked installs.
# A stamp in the virtualenv names the lock it was installed from, so an unchanged
# lock costs nothing and a changed one (after a pull) re-syncs on the next run.

PYTHON="${PYTHON:-python3}"

make_venv() {
    local venv="$1"
    if [ ! -x "$venv/bin/python" ]; then
        echo "==> creating virtualenv in $venv"
        "$PYTHON" -m venv "$venv"
    fi
}

pip_quiet() {
    "$VENV/bin/python" -m pip --quiet --disable-pip-version-check "$@"
}

# Install exactly the versions, with the hashes, of one lock file, then Conveyor itself
# (editable, built with the locked setuptools rather than whatever PyPI has today).
install_locked() {
    local lock="$1" stamp="$VENV/.conveyor-lock"
    local want
    want="$lock $(sha256sum "$lock" pyproject.toml | cut -c1-64 | tr '\n' ' ')"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    echo "==> installing the locked dependencies ($lock)"
    pip_quiet install --require-hashes -r "$lock"
    pip_quiet install --no-deps --no-build-isolation -e .
    echo "$want" >"$stamp"
}

# Install the newest releases pyproject.toml allows, as `pip install conveyor-jobs` would.
install_latest() {
    local extras="$1"
    echo "==> installing the newest allowed releases (no lock)"
    rm -f "$VENV/.conveyor-lock"
    pip_quiet install --upgrade pip
    pip_quiet install --upgrade --upgrade-strategy eager -e ".$extras"
}
