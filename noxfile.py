"""Sessions that check convlab on every Python it claims: ``nox -s core`` (all), ``nox -s core-3.10`` (one).

Each ``core`` session makes a fresh virtual environment, installs convlab
with NumPy only (no framework), runs ``convlab demo`` and the tests that run
without a framework: the NumPy backend's and the backend-free ones; every
other backend's tests skip because its framework is not installed. Tests
marked ``long`` (many training steps of §8's networks, the scratch backend's
run of the shared suites) run in the full suite only: what they check does
not depend on the Python version, and they took more than half of each
session's test time. A Python
that this machine lacks makes nox report the session as skipped, by name.

The full suite, on every backend, runs on one Python through
``bash scripts/dev.sh`` (the README's test command).
"""

from __future__ import annotations

import nox

FULL_SUITE_PYTHON = "3.11"
"""The Python on which ``scripts/dev.sh`` runs the whole suite with every backend."""
OTHER_PYTHONS = ["3.10", "3.12", "3.13"]
"""The other versions the package claims (pyproject.toml's classifiers list these and FULL_SUITE_PYTHON)."""
TEST_TOOLS = ["pytest>=8", "pytest-xdist>=3", "hypothesis>=6.100", "scipy>=1.11", "matplotlib>=3.7"]
"""What the framework-free tests need (matplotlib: the figures' tests); xdist spreads them over the cores."""

nox.options.sessions = ["core"]
nox.options.reuse_existing_virtualenvs = False


@nox.session(python=OTHER_PYTHONS)
def core(session: nox.Session) -> None:
    """Install convlab (NumPy only), run the demo and the framework-free tests."""
    session.run("python", "--version")
    session.install(".")
    demo = session.run("convlab", "demo", silent=True)
    for printed in ("[[19. 25.]", "epoch 10, loss 0.004"):
        if printed not in demo:
            session.error(f"convlab demo did not print {printed!r}:\n{demo}")
    session.log(f"convlab demo printed the book's numbers on Python {session.python}")
    session.install(*TEST_TOOLS)
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "auto",
        "-m",
        "not docs and not long",
        "--ignore=tests/tools/test_notebooks.py",
        "tests",
        "convlab",
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    )
