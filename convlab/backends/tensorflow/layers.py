"""The TensorFlow backend's modules: convlab's layers, and Keras' own convolution, as Keras layers.

:meth:`~convlab.backends.tensorflow.adapter.TensorFlowBackend.module` and
:meth:`~convlab.backends.tensorflow.adapter.TensorFlowBackend.builtin_conv2d`
make them; ``trainable_weights`` and Keras' optimizers take them as they take
Keras' own layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from convlab.backends.base import Backend, LayerCall, LayerDef, Pair
from convlab.backends.tensorflow.framework import keras, tf


class Module(keras.layers.Layer):
    """A layer defined by the core, on Keras weights: one ``add_weight`` per parameter and state, sublayers in order.

    ``layer.trainable_weights`` is then what a Keras optimizer updates; the
    state (batch norm's running statistics, dropout's step) is non-trainable
    weights, as Keras' ``BatchNormalization`` keeps its moving statistics, so
    no optimizer sees it. Modules nest the Keras way: the children are a tuple
    attribute, ``layers``, whose elements Keras' tracker registers as
    sublayers, so ``trainable_weights`` of a ``cl.nn.Sequential`` lists every
    nested weight, once, and ``keras.optimizers.SGD`` trains it. A call hands
    the definition the Keras variables themselves, the sublayers, called
    through Keras' ``__call__`` as ``keras.Sequential`` calls its layers, and
    the layer's mode: ``training``, or Keras' own ``training`` argument where
    a call gives one (``layer(x, training=False)``), as Keras' layers take it.

    Parameters
    ----------
    definition : LayerDef
        What the layer computes.
    backend : TensorFlowBackend
        The backend the layer computes with, whichever is active when it is called.
    initial : mapping of str to numpy.ndarray
        Each parameter's name and initial value; each becomes an attribute (``layer.weight``).
    children : tuple of Module
        Sublayers, kept in order as :attr:`layers`; Keras tracks each, so their
        weights are among this layer's ``trainable_weights``. Each is found by
        its name too (``block.conv1``; ``getattr(net, "0")``).
    state : mapping of str to numpy.ndarray, optional
        Each state tensor's name and initial value; each becomes a
        non-trainable weight and an attribute (``bn.running_mean``).
    """

    def __init__(
        self,
        definition: LayerDef,
        backend: Backend,
        initial: Mapping[str, np.ndarray],
        children: tuple[keras.layers.Layer, ...] = (),
        state: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        # A float64 backend's layers are float64 Keras layers: their weights and the inputs Keras converts.
        super().__init__(dtype=None if backend.dtype == np.float32 else backend.dtype.name)
        self.definition = definition
        self.backend = backend
        state = state or {}
        for name, value in initial.items():
            weight = self.add_weight(name=name, shape=value.shape, initializer=keras.initializers.Constant(value))
            setattr(self, name, weight)
        for name, value in state.items():
            variable = self.add_weight(
                name=name, shape=value.shape, initializer=keras.initializers.Constant(value), trainable=False
            )
            setattr(self, name, variable)
        # The Keras variables themselves, made once: TF ops read them where the forward pass uses
        # them, as Keras' own layers pass self.kernel, so a call builds no mapping of tensors.
        self.own_weights = {name: getattr(self, name) for name in initial}
        self.own_state = {name: getattr(self, name) for name in state}
        self.named_layers = dict(zip(definition.child_names(len(children)), children, strict=True))
        self.layers = tuple(children)  # a tuple attribute: Keras tracks each element as a sublayer, once
        # Keras' Layer has no mode of its own (its call takes a `training` argument): this attribute is
        # convlab's, which Backend.set_training sets over the sublayers.
        self.training = True
        self.built = True  # weights made here, not in build()

    def __getattr__(self, name: str) -> Any:
        # Only once Keras' own attributes have missed: a block's attribute named as one of Keras' (name,
        # output, trainable) cannot replace it, as setting the sublayer as an attribute would.
        named_layers = self.__dict__.get("named_layers", {})
        if name in named_layers:
            return named_layers[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def input_dtype(self) -> str:
        # Keras casts a float input to this before call(). Inside a use_backend block of this framework and
        # device in another dtype, convlab's core computes the layer in the block's dtype (convlab.nn.layers):
        # the input keeps that dtype, so a float64 block's input is not rounded to float32 on the way in.
        block = self.backend.innermost_block()
        if block is not None and block.name == self.backend.name and block.device == self.backend.device:
            return block.dtype.name
        return super().input_dtype

    def call(self, X: Any, training: bool | None = None) -> Any:
        # Keras' own argument wins where given (`layer(x, training=False)`, or from an enclosing call, which
        # Keras hands down to the sublayers); otherwise the mode set_training chose.
        call = LayerCall(self.training if training is None else bool(training), self.own_state)
        Y = self.definition.forward(self.backend, self.own_weights, X, self.layers, call)
        for name, value in call.updates.items():
            # assign has no gradient: the state moves outside the tape, as BatchNormalization's moving statistics
            # do. The cast: a float64 block (convlab.nn.layers.in_active_precision) computes float64 values for
            # a float32 layer's state.
            variable = self.own_state[name]
            variable.assign(tf.cast(value, variable.dtype))
        return Y


class BuiltinConv2d(keras.layers.Conv2D):
    """Keras' own ``Conv2D`` (one channel in and out, no bias), NHWC with an HWIO kernel, on NCHW images."""

    def __init__(self, kernel_size: Pair, dtype: str | None = None) -> None:
        super().__init__(1, kernel_size, use_bias=False, dtype=dtype)  # default init: glorot_uniform
        self.build((None, None, None, 1))
        self.input_spec = keras.InputSpec(ndim=4)

    def call(self, X: Any) -> Any:
        # NCHW (1, 1, H, W) to Keras' NHWC (1, H, W, 1) and back. squeeze/expand_dims, as transpose and reshape
        # (whose permutation or shape becomes a tensor) cost about twice as much per call in eager mode.
        Y = super().call(tf.expand_dims(tf.squeeze(X, 1), -1))
        return tf.expand_dims(tf.squeeze(Y, -1), 1)
