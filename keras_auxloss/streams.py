"""Where the main network starts: zeros, a given `initial_state`, or the
state a stateful layer carries from one batch to the next (streams read in
chunks). Plain functions of what they read; the layer holds the state, as
`keras.layers.RNN` holds its own (`AuxLossRNN.states`, `reset_state`).

As in `keras.layers.RNN`, the carried state is not among the layer's
weights (`get_weights` of a stateful layer is that of the same layer
without `stateful`). Unlike there, it is among its `variables`, so that
Keras's JAX trainer, which runs a step on the values of `variables`, carries
it too; and it is saved in `.keras` files, as version 0.2.0 saved it.
"""

import keras
from keras import ops

from keras_auxloss.backends import current


def state_variables(batch, sizes, owner):
    """The variables that carry the state, `(batch, size)` for each of
    `sizes`, in float32, for a layer of class name `owner` built for
    batches of `batch` sequences."""
    if batch is None:
        raise ValueError(
            f"{owner} with stateful=True needs a fixed batch size, "
            "to keep one state per sequence from batch to batch; got inputs of "
            "unknown batch size. Give it one: keras.Input(shape, batch_size=...)."
        )
    return [
        keras.Variable(
            ops.zeros((batch, size)),
            trainable=False,
            dtype="float32",
            autocast=False,  # Kept in float32, written whole.
            name=f"state_{i}",
        )
        for i, size in enumerate(sizes)
    ]


def reset(variables, states, *, stateful, owner):
    """Zeroes the carried state `variables`, or sets them to `states` (one
    array per state tensor); `owner` names the layer's class in errors."""
    if not stateful:
        raise AttributeError(f"{owner} is not stateful: it carries no state.")
    if variables is None:
        raise ValueError(f"{owner} is not built yet: it has no state.")
    for i, variable in enumerate(variables):
        variable.assign(ops.zeros(variable.shape) if states is None else states[i])


def save(store, variables):
    """Writes the carried state `variables` (or `None`) into a `.keras`
    file's `store`, under `state_0`, `state_1`, ..."""
    for i, variable in enumerate(variables or []):
        store[f"state_{i}"] = variable.numpy()


def split_store(store, variables):
    """`(own, saved)`: a `.keras` file's `store` of a layer, split into the
    layer's own weights and the saved values of its carried state
    `variables` (or `None`). Version 0.2.0 kept the carried state among the
    weights, under keys 0, 1, ... (the layer's weights then were the state
    alone)."""
    own = {key: store[key] for key in store.keys() if not key.startswith("state_")}
    saved = [store[key] for key in store.keys() if key.startswith("state_")]
    if not saved and variables and len(own) == len(variables):
        own, saved = {}, [own[f"{i}"] for i in range(len(variables))]
    return own, saved


def initial_state(inputs, given, carried, *, sizes, dtype, owner, name):
    """Where the main network starts for a batch of `inputs`, in `dtype`:
    the `given` initial state if any, else the `carried` state variables
    of a stateful layer (checked to have the batch's size), else zeros.
    `sizes` are the cell's state sizes; the errors name the layer's class
    `owner` and its `name`."""
    batch = ops.shape(inputs)[0]
    if given is None and carried is not None:
        expected = carried[0].shape[0]
        current.assert_batch_size(
            inputs,
            expected,
            f"{owner} {name!r} is stateful, built for batches of "
            f"{expected} sequences (one carried state each); the batch size of its "
            f"inputs must be the same. Expected batch size: {expected}; received batch "
            "size:",
        )
        given = [variable.value for variable in carried]
    if given is None:
        return tuple(ops.zeros((batch, size), dtype) for size in sizes)
    given = list(given) if isinstance(given, (list, tuple)) else [given]
    shapes = [tuple(ops.shape(s))[1:] for s in given]
    if len(given) != len(sizes) or any(shape != (size,) for shape, size in zip(shapes, sizes)):
        raise ValueError(
            f"{owner} expects `initial_state` as {len(sizes)} tensors "
            f"of shapes {[(None, size) for size in sizes]}, got {len(given)} "
            f"of shapes {[(None, *shape) for shape in shapes]}."
        )
    return tuple(ops.cast(s, dtype) for s in given)
