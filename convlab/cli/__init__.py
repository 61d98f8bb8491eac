"""The ``convlab`` command: ``info``, ``demo``, ``parity``, ``lenet`` and ``bench``."""

from convlab.cli.main import main

__all__ = ["main"]
