"""The ``convlab`` command: ``demo``, ``info``, ``parity``, ``lenet``, ``train``, ``bench``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from convlab._text import table
from convlab.core.checks import check_output_folder
from convlab.core.registry import backend_info, backend_names, canonical_name, get_backend, load_backend
from convlab.errors import BackendLoadOrderError, BackendNotInstalledError


def _info(args: argparse.Namespace) -> int:
    rows = [("backend", "installed", "version", "device", "install with")]
    for row in backend_info():
        try:
            backend = load_backend(row.name)
        except BackendNotInstalledError:
            rows.append((row.name, "no", "-", "-", row.install_hint))
            continue
        except BackendLoadOrderError as exc:
            rows.append((row.name, "yes", row.version or "-", f"not loadable here: {exc}", row.install_hint))
            continue
        rows.append((row.name, "yes", backend.version(), backend.device, row.install_hint))
    print(table(rows))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from convlab.cli.demo import run_demo

    backend = canonical_name(args.backend) if args.backend else get_backend().name
    check_output_folder(args.plot, "--plot")
    run_demo(backend)
    if args.plot:
        from convlab.plot import save_chapter_figures, save_teaching_figures

        print(f"\nfigures written to {args.plot}:")
        for path in [*save_chapter_figures(args.plot, backend), *save_teaching_figures(args.plot, backend)]:
            print(f"  {path}")
    return 0


def _parity(args: argparse.Namespace) -> int:
    from convlab import parity

    return parity.main(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convlab`` command."""
    parser = argparse.ArgumentParser(prog="convlab", description="The d2l convolution chapter on any framework.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the chapter and print what the book prints")
    names = ", ".join(backend_names())
    demo.add_argument("--backend", help=f"one of {names} (default: $CONVLAB_BACKEND, else numpy)")
    demo.add_argument(
        "--plot",
        metavar="DIR",
        help="also write the chapter's figures into DIR: PNG files, and animated GIFs of padding and stride",
    )
    demo.set_defaults(run=_demo)

    info = commands.add_parser("info", help="list the backends: installed or not, version, device")
    info.set_defaults(run=_info)

    from convlab import parity

    parity_parser = commands.add_parser("parity", help="compare every installed backend with NumPy and each other")
    parity.add_arguments(parity_parser)
    parity_parser.set_defaults(run=_parity)

    from convlab.cli import lenet as lenet_command

    lenet = commands.add_parser("lenet", help="train d2l 7.6's LeNet on Fashion-MNIST on one backend")
    lenet_command.add_arguments(lenet)
    lenet.set_defaults(run=lenet_command.main)
    train = commands.add_parser("train", help="train a network of d2l 7.6 or 8 (--model) on Fashion-MNIST")
    lenet_command.add_arguments(train, choose_model=True)
    train.set_defaults(run=lenet_command.main)

    from convlab import bench

    bench_parser = commands.add_parser("bench", help="time corr2d, train_kernel and import convlab on every backend")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(run=bench.main)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ImportError, ValueError, OSError) as exc:  # BackendNotInstalledError is an ImportError
        print(f"convlab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
