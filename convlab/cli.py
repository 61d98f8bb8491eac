"""``convlab`` command line: ``demo`` and ``info``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from convlab._registry import _adapter_classes, backend_names, load_backend
from convlab.errors import BackendNotInstalledError


def _info() -> int:
    rows = [("backend", "installed", "version", "device", "install with")]
    for name, cls in _adapter_classes().items():
        hint = f'pip install "convlab[{cls.extra}]"' if cls.extra else "(built in)"
        try:
            backend = load_backend(name)
        except BackendNotInstalledError:
            rows.append((name, "no", "-", "-", hint))
            continue
        rows.append((name, "yes", backend.version(), backend.device(), hint))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convlab`` command."""
    parser = argparse.ArgumentParser(prog="convlab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the chapter and print what the book prints")
    demo.add_argument("--backend", default=None, help=f"one of {', '.join(backend_names())} (default: numpy)")
    commands.add_parser("info", help="list the backends: installed or not, version, device")
    args = parser.parse_args(argv)

    if args.command == "info":
        return _info()
    from convlab.demo import run_demo
    from convlab._registry import get_backend

    try:
        run_demo(args.backend or get_backend().name)
    except (BackendNotInstalledError, ValueError) as exc:
        print(f"convlab demo: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
