"""The metric that reports the auxiliary loss in `fit`'s and `evaluate`'s
logs, its name, and which Keras step a call runs in.

On TensorFlow and PyTorch it is a `keras.metrics.Mean` updated in the
layer's `call` (its variables never autocast: on PyTorch, an update made
inside a mixed-precision layer's autocast scope would be written to a cast
copy of the variable and lost). Keras's JAX trainer runs `call` in a stateless scope that
does not hold the metrics' variables (they are purged during `fit`), so a
metric updated there fails with "'NoneType' object is not callable"
(keras-team/keras#21639, #19402). On JAX the mean is therefore kept on the
host: each batch sends its loss and weight with an ordered `io_callback`,
and `result()` reads the mean back with another, so the logs show the
running mean over the epoch, that batch's included. Both are
`io_callback`s because JAX orders ordered callbacks among those of one
kind only: an update sent with `jax.debug.callback` could run after the
read in the same compiled step, where `train_on_batch` and
`test_on_batch` read their logs.
"""

import re
import sys

import keras
import numpy as np


def default_name(layer_class):
    """The name Keras gives the first unnamed layer of `layer_class`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", layer_class.__name__)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# The prefixes `keras.layers.Bidirectional` gives the names of its two
# copies of a layer (`forward_aux_loss_lstm`, `backward_aux_loss_lstm`).
DIRECTIONS = ("forward_", "backward_")


def direction(layer):
    """`"forward_"` or `"backward_"` for a copy that
    `keras.layers.Bidirectional` made and named, else `""`."""
    return next((prefix for prefix in DIRECTIONS if layer.name.startswith(prefix)), "")


def is_unnamed(layer):
    """Whether `layer` bears a name Keras gives an unnamed layer of its
    class: the default name, numbered or not (`aux_loss_lstm_3`), and
    within `keras.layers.Bidirectional` with its direction's prefix
    (`backward_aux_loss_lstm_3`)."""
    name = layer.name[len(direction(layer)) :]
    return re.fullmatch(rf"{default_name(type(layer))}(_\d+)?", name) is not None


def metric_name(layer, model=None):
    """The name under which `layer` logs its auxiliary loss in `model`'s
    logs (`val_` prefixed for `fit`'s validation).

    A named layer logs `<name>_aux_loss`. The unnamed auxiliary layers of a
    model log `aux_loss`, `aux_loss_1`, `aux_loss_2`, ... in the order of
    the model's layers, and those in `keras.layers.Bidirectional` log
    `forward_aux_loss` and `backward_aux_loss` (`forward_aux_loss_1`, ...
    for a second one): names that do not depend on what the process built
    before (Keras numbers unnamed layers across a session). Outside a
    model, an unnamed layer's name is `aux_loss` (`forward_aux_loss`,
    `backward_aux_loss`).
    """
    if not is_unnamed(layer):
        return f"{layer.name}_aux_loss"
    prefix = direction(layer)
    unnamed = [layer]
    if model is not None:
        unnamed = [
            other
            for other in model._flatten_layers(include_self=False)
            if getattr(other, "aux_loss_tracker", None) is not None
            and is_unnamed(other)
            and direction(other) == prefix
        ]
    position = next((i for i, other in enumerate(unnamed) if other is layer), 0)
    name = f"{prefix}aux_loss"
    return name if position == 0 else f"{name}_{position}"


def running_step():
    """`(model, step)` for the Keras model whose `train_step` or
    `test_step` this call runs inside (`fit`; `evaluate` and `fit`'s
    validation), else `(None, None)`.

    Keras calls a model with `training=False` in `test_step` and in
    `predict_step` alike and passes no other sign, so the call stack is
    read: at trace time on TensorFlow and JAX, at every call on PyTorch.
    `predict`, `export` and direct calls find no step.
    """
    frame = sys._getframe(1)
    while frame is not None:
        model = frame.f_locals.get("self")
        if frame.f_code.co_name in ("train_step", "test_step") and isinstance(model, keras.Model):
            return model, frame.f_code.co_name
        frame = frame.f_back
    return None, None


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
        # Cut from the gradient: an io_callback has no derivative.
        values, weight = jax.lax.stop_gradient((values, weight))
        jax.experimental.io_callback(self._add, None, values, weight, ordered=_ordered())

    def _add(self, values, weight):
        # NumPy only: a JAX operation inside a callback can wait forever on
        # the CPU's threads that run the program calling back (values and
        # weight may arrive as JAX arrays).
        values = np.asarray(values, np.float64)
        weight = np.asarray(weight, np.float64)
        self._total += float(np.sum(values * weight))
        self._weight += float(np.sum(np.broadcast_to(weight, values.shape)))

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
