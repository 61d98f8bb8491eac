"""``convlab train`` and ``convlab lenet``: a model of d2l §7.6 or §8 on Fashion-MNIST on one backend, its record.

``convlab lenet`` is ``convlab train --model lenet`` (with LeNet's activation
and pooling options); ``convlab train --model resnet18 --size mini`` trains
§8's networks.
"""

from __future__ import annotations

import datetime
import platform
import time
from pathlib import Path
from typing import Any

from convlab import __version__
from convlab.core.checks import check_output_file, check_output_folder
from convlab.core.registry import canonical_name, get_backend, use_backend
from convlab.data import FashionMNIST
from convlab.nn import models
from convlab.nn.modern import INPUT_SIZE
from convlab.plot import _pyplot, training_curves
from convlab.train.classifier import layer_summary, train_classifier

MODELS = ("lenet", "bn_lenet", "alexnet", "vgg", "nin", "googlenet", "resnet18", "densenet")
"""What ``convlab train --model`` trains: the functions of :mod:`convlab.models` of those names."""


def add_arguments(parser: Any, choose_model: bool = False) -> None:
    """The options of ``convlab lenet``; with ``choose_model``, of ``convlab train``: ``--model`` and ``--size`` too."""
    if choose_model:
        parser.add_argument("--model", choices=MODELS, required=True, help="the network to train")
        parser.add_argument(
            "--size",
            choices=("mini", "book"),
            default="mini",
            help="a §8 network's size: 28x28 and fewer channels, or the book's (default: mini)",
        )
    parser.add_argument("--backend", help="the backend to train on (default: $CONVLAB_BACKEND, else numpy)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: 10)")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate (default: 0.1, the book's)")
    parser.add_argument("--batch-size", type=int, default=128, help="minibatch size (default: 128, the book's)")
    parser.add_argument("--max-batches", type=int, help="at most this many batches per epoch (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and batch order (default: 0)")
    parser.add_argument(
        "--activation", choices=("sigmoid", "relu"), default="sigmoid", help="LeNet's activation (default: sigmoid)"
    )
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg", help="LeNet's pooling (default: avg)")
    parser.add_argument("--data", metavar="DIR", help="the Fashion-MNIST files (default: the usual places)")
    parser.add_argument("--plot", metavar="DIR", help="write the training curves as a PNG into DIR")
    parser.add_argument(
        "--json", metavar="PATH", help="save the run (losses, accuracies, timing, versions) as ClassifierResult.save"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    parser.add_argument(
        "--compile",
        choices=tuple(COMPILE_FLAGS),
        default="auto",
        help="compile each training step whole with the framework's compiler: on, off, or auto (default: where "
        "the run is long enough to repay the compile time)",
    )


COMPILE_FLAGS = {"auto": "auto", "on": True, "off": False}
"""``--compile``'s words and the ``compile=`` of :func:`convlab.train_classifier` each stands for."""


def _model_name(args: Any) -> str:
    return getattr(args, "model", "lenet")


def _command(args: Any, backend: str) -> str:
    """The command that repeats this run (where the output goes aside)."""
    model = _model_name(args)
    if model == "lenet" and not hasattr(args, "model"):
        words = ["convlab", "lenet"]
    else:
        words = ["convlab", "train", "--model", model] + ([] if model == "lenet" else ["--size", args.size])
    words += ["--backend", backend, "--epochs", str(args.epochs), "--lr", str(args.lr)]
    words += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    if model == "lenet":
        words += ["--activation", args.activation, "--pooling", args.pooling]
    if args.max_batches is not None:
        words += ["--max-batches", str(args.max_batches)]
    if getattr(args, "compile", "auto") != "auto":
        words += ["--compile", args.compile]
    return " ".join(words)


def _build(args: Any) -> tuple[Any, int]:
    """The model the options name, and the height and width of the images it takes."""
    model = _model_name(args)
    if model == "lenet":
        return models.lenet(seed=args.seed, activation=args.activation, pooling=args.pooling), 28
    return getattr(models, model)(seed=args.seed, size=args.size), INPUT_SIZE[model][args.size]


def check_arguments(args: Any) -> None:
    """Refuse a bad option before anything is printed or computed; ``ValueError`` naming the option."""
    if args.backend is not None:
        canonical_name(args.backend)  # an unknown name lists the known ones
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value <= 0:
            raise ValueError(f"{option}: expected a positive int, got {value}")
    if args.max_batches is not None and args.max_batches <= 0:
        raise ValueError(f"--max-batches: expected a positive int, got {args.max_batches}")
    if not args.lr > 0 or args.lr == float("inf"):
        raise ValueError(f"--lr: expected a positive finite number, got {args.lr}")
    if args.seed < 0:
        raise ValueError(
            f"--seed: expected an int of at least 0 (NumPy's generators take no negative seed), got {args.seed}"
        )
    if args.data is not None and not Path(args.data).is_dir():
        state = "is not a directory" if Path(args.data).exists() else "does not exist"
        raise ValueError(f"--data: expected the directory holding the Fashion-MNIST files, but {args.data} {state}")
    check_output_folder(args.plot, "--plot")
    check_output_file(args.json, "--json")


def main(args: Any) -> int:
    """``convlab train`` / ``convlab lenet``: one model on Fashion-MNIST on one backend; returns the exit status."""
    check_arguments(args)
    with use_backend(args.backend or get_backend().name) as backend:
        model, side = _build(args)
        resize = None if side == 28 else side
        data = FashionMNIST(batch_size=args.batch_size, root=args.data, seed=args.seed, resize=resize)
        if not args.quiet:
            layer_summary(model, (1, 1, side, side))
        start = time.perf_counter()
        result = train_classifier(
            model,
            data,
            args.epochs,
            args.lr,
            max_batches=args.max_batches,
            verbose=not args.quiet,
            compile=COMPILE_FLAGS[getattr(args, "compile", "auto")],
        )
        seconds = time.perf_counter() - start
    print(
        f"{backend.name}: train loss {result.train_loss[-1]:.3f}, train acc {result.train_acc[-1]:.3f}, "
        f"val acc {result.val_acc[-1]:.3f}; {result.examples_per_sec:.0f} examples/s, {seconds:.1f} s in all"
    )
    if args.json:
        result.metadata.update(
            command=_command(args, backend.name),
            date=datetime.date.today().isoformat(),
            seconds=round(seconds, 1),
            epochs=args.epochs,
            lr=args.lr,
            batch_size=args.batch_size,
            max_batches=args.max_batches,
            seed=args.seed,
            model=_model_name(args),
            **({"activation": args.activation, "pooling": args.pooling} if _model_name(args) == "lenet" else {}),
            **({} if _model_name(args) == "lenet" else {"size": args.size}),
            framework_version=backend.version(),
            convlab_version=__version__,
            python=platform.python_version(),
        )
        result.save(args.json)
        print(f"results written to {args.json}")
    if args.plot:
        Path(args.plot).mkdir(parents=True, exist_ok=True)
        path = Path(args.plot) / f"{_model_name(args)}-{result.backend}.png"
        figure = training_curves(result)
        figure.savefig(path)
        _pyplot().close(figure)  # pyplot keeps every figure it made until closed; a command leaves none open
        print(f"curves written to {path}")
    return 0
