#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (or the directory given as $1).
#   bash scripts/build-docs.sh              # -> docs/_build/html/index.html
#   bash scripts/build-docs.sh /tmp/site    # somewhere else
# Assumes the development environment of `bash scripts/dev.sh setup`: .venv with the dev extra, which
# holds Sphinx, MyST-NB, sphinx-design and pydata-sphinx-theme (PYTHON=... picks another interpreter).
# Needs Graphviz's `dot` for the architecture diagram; installs Debian's graphviz when it is missing
# and this runs as root.
# Any warning fails the build (-W; Sphinx 8.1+ reports every warning before failing, as --keep-going
# did). The notebooks run on NumPy and every installed backend runs for the home, side-by-side and
# parity pages: a build takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=${1:-docs/_build/html}
PYTHON=${PYTHON:-$VENV/bin/python}  # the test suite passes its own interpreter
[ -x "$PYTHON" ] || { echo "build-docs: no $PYTHON; run: bash scripts/dev.sh setup" >&2; exit 2; }
"$PYTHON" -c "import sphinx, myst_nb, sphinx_design, pydata_sphinx_theme" 2>/dev/null || {
    echo "build-docs: $PYTHON lacks the docs packages; run: bash scripts/dev.sh setup" >&2
    exit 2
}
if ! command -v dot >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "build-docs: installing graphviz (for the architecture diagram)" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null
    else
        echo "build-docs: Graphviz's dot is missing; install it (Debian: apt-get install graphviz)" >&2
        exit 2
    fi
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# -E: read every page again, so that each build reruns the notebooks and backends and re-reports every warning.
start=$SECONDS
"$PYTHON" -m sphinx -W --keep-going -E -b html -d "$OUT/.doctrees" docs "$OUT"
echo "build-docs: built $OUT/index.html in $((SECONDS - start)) s"
