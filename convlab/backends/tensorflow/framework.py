"""TensorFlow and Keras as this backend imports them: quietly, and with Keras 3 on TensorFlow.

The adapter, its kernels and the reference code take ``tf`` and ``keras``
from here, so that TensorFlow is imported one way, its load-time log lines
held back (``CONVLAB_VERBOSE=1`` shows them), whichever of them a process
imports first.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

# The rest of the backend imports TensorFlow and Keras from here.
__all__ = ["keras", "tf"]

# Selecting this backend should print nothing the user did not ask for. CONVLAB_VERBOSE=1 (any value but "" or
# "0") turns off all of the hiding below, to see what TensorFlow has to say.
_VERBOSE = os.environ.get("CONVLAB_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def _stderr_held() -> Iterator[None]:
    """Hold what is written to file descriptor 2 meanwhile; replay it only if the block raises.

    TensorFlow's native libraries log while they load, before absl's logging is
    initialised and so before TF_CPP_MIN_LOG_LEVEL applies: on a CPU, that
    oneDNN is on and that no CUDA driver was found, once per library. Only the
    descriptor catches these, and a failed import still shows all of it.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 to hold (a daemon)
        saved = None
    if saved is None:
        yield
        return
    with tempfile.TemporaryFile() as held:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed and sys.stderr is not None:
                held.seek(0)
                sys.stderr.write(held.read().decode(errors="replace"))
                sys.stderr.flush()


if not _VERBOSE:
    # Read once, when the C++ runtime loads; 3 also hides ERROR lines such as "failed call to cuInit" on a
    # machine without a GPU, where TensorFlow then simply runs on the CPU. A user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with contextlib.nullcontext() if _VERBOSE else _stderr_held():
    import keras
    import tensorflow as tf

# tf.keras is Keras 3 since TF 2.16; its layers are what this backend's modules are.
if keras.backend.backend() != "tensorflow":
    raise ImportError(f"Keras runs on {keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow")
