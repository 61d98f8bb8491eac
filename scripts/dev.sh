#!/usr/bin/env bash
# Set up the full development environment (every backend) in .venv and run the whole test suite.
#   bash scripts/dev.sh            # set up, then run all tests
#   bash scripts/dev.sh setup      # set up only
#   bash scripts/dev.sh versions   # every other Python the package claims: install, demo, NumPy tests (nox)
# Extra arguments after "test" go to pytest: bash scripts/dev.sh test -k parity
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

setup() {
    # Debian packages: Graphviz draws the architecture diagram, headless Chromium renders pages the
    # way a reader sees them, and dataset-fashion-mnist is the real Fashion-MNIST (LeNet, d2l 7.6)
    # in /usr/share/datasets/fashion-mnist/, so nothing downloads data at run time.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
        && ! { command -v dot && command -v chromium && [ -d /usr/share/datasets/fashion-mnist ]; } >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium graphviz dataset-fashion-mnist >/dev/null
    fi
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    # The constraints pin torch to the CPU build cached on our machines.
    "${pip[@]}" install -c scripts/constraints.txt -e ".[all,dev]"
    # mxnet 1.9.1 pins numpy<2; install it without its pins beside NumPy 2 (see convlab/backends/mxnet/).
    "${pip[@]}" install --no-deps mxnet==1.9.1
}

run_tests() {
    export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
    "$VENV/bin/python" -m pytest "$@"
}

other_pythons() {
    # One nox session per other Python that pyproject.toml claims (noxfile.py). pyenv keeps each
    # version's python3.X off PATH; put every installed version's bin directory at the end of it.
    local root
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for bin in "$root"/versions/*/bin; do
        [ -d "$bin" ] && PATH="$PATH:$bin"
    done
    "$VENV/bin/nox" -s core "$@"
}

case "${1:-all}" in
    setup) setup ;;
    test) shift; run_tests "$@" ;;
    # Two workers share the tests; the docs tests stay together (xdist_group), so the site is built once. The
    # slowest tests are listed, to see where CI's time goes.
    all) shift || true; setup; run_tests -n "${CONVLAB_TEST_WORKERS:-2}" --dist loadgroup --durations 30 "$@" ;;
    versions) shift; other_pythons "$@" ;;
    *) echo "usage: bash scripts/dev.sh [setup|test|all|versions] [pytest or nox args]" >&2; exit 2 ;;
esac
