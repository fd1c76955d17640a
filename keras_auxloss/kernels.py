"""Which kernel runs a run of a cell over time: a fused kernel where one
serves, else the loop of the backend (`backends/`).

A fused kernel runs a contiguous, unmasked run of one cell from a known
state in one call (`Kernel.run`). Every run the method makes is cut into
such runs by the backend's `fused_run` (the capture pass at the steps where
states are captured, masked runs where a mask changes). The kernels serve
Keras's own `LSTMCell` and `GRUCell` with their default equations, and the
package's long-memory cell:

- `"cudnn"`: Keras's own `keras.src.backend.lstm` and `gru`, which run
  cuDNN on a GPU, on TensorFlow, JAX (the LSTM; JAX has no cuDNN GRU) and
  PyTorch, as `keras.layers.LSTM(use_cudnn="auto")` runs them;
- `"onednn"`: PyTorch's own kernels (`torch._VF.lstm`, `gru`: oneDNN's
  on a CPU), where PyTorch's cuDNN does not run (`backends/torch_fused.py`);
- `"lru"`: the package's `LinearRecurrentUnitCell`, its matrix products
  taken out of the loop and only its elementwise linear recurrence stepped
  (`linear_recurrent_unit_kernel.py`), on every backend and device;
- `"loop"`: the loop, everywhere else: on TensorFlow's and JAX's CPU, for
  other cells, with recurrent dropout, and on JAX for runs cut at steps
  known only at run time (its shapes are static).

Where cuDNN does not run a run, `set_kernel` chooses between the other
kernels (`"fused"`, the default, or the environment variable
`KERAS_AUXLOSS_KERNEL`) and the loop (`"loop"`): which of oneDNN's kernel
and the loop is faster on PyTorch's CPU depends on the CPU
(docs/results.md). On TensorFlow's CPU Keras's cells take the loop:
TensorFlow's fused CPU op (`tf.raw_ops.BlockLSTMV2`) was slower than the
loop on every CPU measured.
"""

import functools
import os
from collections.abc import Callable
from typing import NamedTuple

import keras
from absl import logging
from keras import ops

from keras_auxloss import linear_recurrent_unit_kernel
from keras_auxloss.linear_recurrent_unit_cell import LinearRecurrentUnitCell

CHOICES = ("fused", "loop")
_choice = os.environ.get("KERAS_AUXLOSS_KERNEL", "fused")


class Kernel(NamedTuple):
    """A fused kernel for one cell: `run(inputs, state, return_sequences)`
    runs it over time-major `inputs` (what the cell reads, `(time, batch,
    features)`) from `state` (a tuple of `(batch, size)` tensors), and
    returns `(output, state, sequences)` (`sequences` `(time, batch,
    units)`, or `None`); it raises `NotImplementedError` where it cannot
    serve these inputs (the caller takes the loop)."""

    name: str
    run: Callable


def set_kernel(name):
    """Chooses what runs a run that cuDNN does not (`use_cudnn`) for the
    layers built afterwards: `"fused"` (the default) the package's other
    kernels, PyTorch's own for Keras's LSTM and GRU cells on its CPU and
    the `LinearRecurrentUnitCell`'s `"lru"`; `"loop"` the loop."""
    global _choice
    if name not in CHOICES:
        raise ValueError(
            "Received an invalid value for argument `name`, expected one of "
            f"{CHOICES}, got {name!r}."
        )
    _choice = name


def kernel_choice():
    """`set_kernel`'s choice: `"fused"` or `"loop"`."""
    if _choice not in CHOICES:
        raise ValueError(
            f"The environment variable KERAS_AUXLOSS_KERNEL must be one of {CHOICES}, "
            f"got {_choice!r}."
        )
    return _choice


def cell_kind(cell):
    """`"lstm"` or `"gru"` for Keras's own `LSTMCell` and `GRUCell`
    (`reset_after=True`) with their default activations, which the fused
    kernels compute; `None` for any other cell."""
    default = (
        cell.__class__ in (keras.layers.LSTMCell, keras.layers.GRUCell)
        and cell.activation is keras.activations.tanh
        and cell.recurrent_activation is keras.activations.sigmoid
    )
    if not default:
        return None
    if type(cell) is keras.layers.LSTMCell:
        return "lstm"
    return "gru" if cell.reset_after else None


class Choice(NamedTuple):
    """A runner's kernel (`None`: the loop), and, where `use_cudnn=True`
    and cuDNN cannot serve, why (`refusal`, raised when the runner runs)."""

    kernel: Kernel | None
    refusal: str | None


def kernel_for(cell, use_cudnn="auto", compute_dtype=None):
    """The `Choice` of kernel for `cell`, as `use_cudnn` asks (Keras's
    meaning: `"auto"` cuDNN where it serves, `True` cuDNN or an error,
    `False` never cuDNN), for a layer that computes in `compute_dtype`
    (whose scope casts the weights of Keras's cells as they are read; the
    cell's own if `None`)."""
    kind = cell_kind(cell)
    if kind is not None and compute_dtype not in (None, cell.compute_dtype):
        reason = f"the cell computes in {cell.compute_dtype}, its layer in {compute_dtype}"
        return Choice(None, reason if use_cudnn is True else None)
    reason = cudnn_refusal(cell, kind)
    if use_cudnn is not False and reason is None:
        return Choice(Kernel("cudnn", functools.partial(keras_kernel, cell, kind)), None)
    if use_cudnn is True:
        return Choice(None, reason)
    if kernel_choice() == "loop":
        return Choice(None, None)
    if kind is not None and keras.backend.backend() == "torch" and not _cuda():
        from keras_auxloss.backends import torch_fused

        return Choice(Kernel("onednn", functools.partial(torch_fused.run, cell, kind)), None)
    if type(cell) is LinearRecurrentUnitCell:  # A subclass may change its equations.
        return Choice(
            Kernel("lru", functools.partial(linear_recurrent_unit_kernel.run, cell)), None
        )
    return Choice(None, None)


def _cuda():
    """Whether PyTorch puts Keras's tensors on a GPU (where its own kernels
    would run cuDNN)."""
    import torch

    return torch.cuda.is_available()


def cudnn_refusal(cell, kind):
    """Why cuDNN cannot run `cell` here (a sentence), or `None` if it can."""
    from keras.src import backend as keras_backend

    backend = keras.backend.backend()
    if kind is None:
        return (
            f"the cell is a {type(cell).__name__} (cuDNN runs Keras's LSTMCell, and GRUCell "
            "with reset_after=True, with their default activations)"
        )
    if backend == "jax" and kind == "gru":
        return "JAX has no cuDNN GRU"
    if backend not in ("tensorflow", "jax", "torch"):
        return f"the {backend} backend has no cuDNN kernel"
    if not cell.use_bias:
        return "the cell has use_bias=False (Keras's cuDNN kernels need its bias)"
    options = dict(reset_after=True) if backend == "tensorflow" and kind == "gru" else {}
    if not keras_backend.cudnn_ok(
        cell.activation, cell.recurrent_activation, False, cell.use_bias, **options
    ):
        return f"no GPU with cuDNN is visible to the {backend} backend"
    return None


def keras_kernel(cell, kind, inputs, state, return_sequences):
    """`Kernel.run` through Keras's own `keras.src.backend.lstm` or `gru`
    (batch-major, as Keras's layers call them)."""
    from keras.src import backend as keras_backend

    inputs = ops.moveaxis(ops.cast(inputs, cell.compute_dtype), 0, 1)
    weights = dict(
        kernel=cell.kernel,
        recurrent_kernel=cell.recurrent_kernel,
        bias=cell.bias,
        activation=cell.activation,
        recurrent_activation=cell.recurrent_activation,
        return_sequences=return_sequences,
    )
    if kind == "lstm":
        output, sequences, new = keras_backend.lstm(inputs, state[0], state[1], None, **weights)
    else:
        output, sequences, new = keras_backend.gru(inputs, state[0], None, **weights)
    sequences = ops.moveaxis(sequences, 0, 1) if return_sequences else None
    return output, tuple(new), sequences


def used(runners):
    """The kernel that last ran each run of `runners` (`cells.CellRunner`)."""
    return {name: kernel for runner in runners for name, kernel in runner.kernels_used.items()}


def compiles_with_xla(runners):
    """Whether the runs of `runners` compile with XLA: not on TensorFlow
    with a kernel (cuDNN's ops do not compile, as Keras's LSTM says with
    `supports_jit`, nor do segments of lengths known only at run time)."""
    has_kernel = any(r.kernel is not None for r in runners)
    return not (keras.backend.backend() == "tensorflow" and has_kernel)


def log_new(owner, runners):
    """Logs each run of `runners` (`owner`'s: its class and name) whose
    kernel has changed since it was last logged, so that each is said once."""
    for runner in runners:
        for name, kernel in runner.kernels_used.items():
            if runner.kernels_logged.get(name) != kernel:
                how = "the loop" if kernel == "loop" else f"the {kernel} kernel"
                logging.info("%s: the %s runs on %s.", owner, name, how)
                runner.kernels_logged[name] = kernel
