"""The metric that reports the auxiliary loss in `fit`'s and `evaluate`'s
logs, its name, and when the loss is measured.

On TensorFlow and PyTorch it is a `keras.metrics.Mean` updated in the
layer's `call` (its variables never autocast: on PyTorch, an update made
inside a mixed-precision layer's autocast scope would be written to a cast
copy of the variable and lost). Keras's JAX trainer runs `call` in a stateless scope that
does not hold the metrics' variables (they are purged during `fit`), so a
metric updated there fails with "'NoneType' object is not callable"
(keras-team/keras#21639, #19402). On JAX the mean is therefore kept on the
host: each batch sends its loss and weight with an ordered
`jax.debug.callback`, and `result()` reads the mean back with an ordered
`io_callback`, so the logs show the same running mean over the epoch.
"""

import re
import sys

import keras
import numpy as np


def default_name(layer_class):
    """The name Keras gives the first unnamed layer of `layer_class`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", layer_class.__name__)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def in_keras_test_step():
    """Whether this call runs inside a Keras model's `test_step`: in
    `evaluate` and in `fit`'s validation, where the auxiliary loss is
    measured on held-out data.

    Keras calls a model with `training=False` in `test_step` and in
    `predict_step` alike and passes no other sign, so the call stack is
    read: at trace time on TensorFlow and JAX, at every call on PyTorch.
    `predict`, `export` and direct calls find no `test_step` and run the
    main network alone.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "test_step" and isinstance(
            frame.f_locals.get("self"), keras.Model
        ):
            return True
        frame = frame.f_back
    return False


def loss_tracker(name):
    """A metric with `update_state(value, sample_weight)` that logs the
    weighted mean of the values since its last reset as `name`."""
    if keras.backend.backend() == "jax":
        return HostMean(name=name)
    return FullPrecisionMean(name=name)


class FullPrecisionMean(keras.metrics.Mean):
    """`keras.metrics.Mean` whose sums are never autocast to the layer's
    compute dtype, so updates from a mixed-precision `call` are kept."""

    def add_variable(self, shape, initializer, dtype=None, aggregation="sum", name=None):
        variable = super().add_variable(shape, initializer, dtype, aggregation, name)
        variable._autocast = False  # Keras has no public switch for metrics.
        return variable


class HostMean(keras.metrics.Metric):
    """A weighted mean kept in Python on the host, for JAX (see above).

    It has no variables, so it adds nothing to the state that `fit` carries
    and nothing to saved files.
    """

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._total = 0.0
        self._weight = 0.0

    def update_state(self, values, sample_weight=None):
        import jax

        weight = 1.0 if sample_weight is None else sample_weight
        jax.debug.callback(self._add, values, weight, ordered=_ordered())

    def _add(self, values, weight):
        self._total += float(np.sum(np.asarray(values, np.float64) * weight))
        self._weight += float(np.sum(np.broadcast_to(weight, np.shape(values))))

    def _mean(self):
        return np.asarray(self._total / self._weight if self._weight else 0.0, "float32")

    def result(self):
        import jax

        return jax.experimental.io_callback(
            self._mean, jax.ShapeDtypeStruct((), "float32"), ordered=_ordered()
        )

    def reset_state(self):
        self._total = 0.0
        self._weight = 0.0


def _ordered():
    """JAX runs ordered callbacks on one device only: under a Keras
    distribution they are unordered, so a batch's loss may reach the logged
    mean one batch late."""
    return keras.distribution.distribution() is None
