"""Where the main network starts: zeros, a given `initial_state`, or the
state a stateful layer carries from one batch to the next (streams read in
chunks).

As in `keras.layers.RNN`, the carried state is not among the layer's
weights (`get_weights` of a stateful layer is that of the same layer
without `stateful`). Unlike there, it is among its `variables`, so that
Keras's JAX trainer, which runs a step on the values of `variables`, carries
it too; and it is saved in `.keras` files, as version 0.2.0 saved it.
"""

import keras
from keras import ops
from keras.src.utils import tracking

from keras_auxloss.backends import current
from keras_auxloss.cells import state_sizes


class Streams:
    """The state of an `AuxLossRNN`: mixed into the layer."""

    @tracking.no_automatic_dependency_tracking
    def _create_state_variables(self, batch):
        if batch is None:
            raise ValueError(
                f"{type(self).__name__} with stateful=True needs a fixed batch size, "
                "to keep one state per sequence from batch to batch; got inputs of "
                "unknown batch size. Give it one: keras.Input(shape, batch_size=...)."
            )
        self.states = [
            keras.Variable(
                ops.zeros((batch, size)),
                trainable=False,
                dtype="float32",
                autocast=False,  # Kept in float32, written whole.
                name=f"state_{i}",
            )
            for i, size in enumerate(state_sizes(self.cell))
        ]

    @property
    def variables(self):
        return super().variables + list(self.states or [])

    def reset_state(self, states=None):
        """Zeroes the carried state of a stateful layer, or sets it to
        `states` (one array per state tensor), as `keras.layers.LSTM` does."""
        if not self.stateful:
            raise AttributeError(f"{type(self).__name__} is not stateful: it carries no state.")
        if self.states is None:
            raise ValueError(f"{type(self).__name__} is not built yet: it has no state.")
        for i, variable in enumerate(self.states):
            variable.assign(ops.zeros(variable.shape) if states is None else states[i])

    def reset_states(self, states=None):
        """`reset_state`, under the name of Keras's older API."""
        self.reset_state(states)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, variable in enumerate(self.states or []):
            store[f"state_{i}"] = variable.numpy()

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if not key.startswith("state_")}
        saved = [store[key] for key in store.keys() if key.startswith("state_")]
        if not saved and self.states and len(own) == len(self.states):
            # Version 0.2.0 kept the carried state among the weights: keys 0, 1, ...
            own, saved = {}, [own[f"{i}"] for i in range(len(self.states))]
        super().load_own_variables(own)
        for variable, value in zip(self.states or [], saved):
            variable.assign(value)

    def _initial_state(self, inputs, initial_state):
        """Where the main network starts, in its dtype: `initial_state` if
        given, else the carried state of a stateful layer (checked to have
        the batch's size), else zeros."""
        runner, sizes = self.main_network.runner, state_sizes(self.cell)
        batch = ops.shape(inputs)[0]
        if initial_state is None and self.states is not None:
            expected = self.states[0].shape[0]
            current.assert_batch_size(
                inputs,
                expected,
                f"{type(self).__name__} {self.name!r} is stateful, built for batches of "
                f"{expected} sequences (one carried state each); the batch size of its "
                f"inputs must be the same. Expected batch size: {expected}; received batch "
                "size:",
            )
            initial_state = [variable.value for variable in self.states]
        if initial_state is None:
            return runner.zero_state(batch)
        initial_state = (
            list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        )
        shapes = [tuple(ops.shape(s))[1:] for s in initial_state]
        if len(initial_state) != len(sizes) or any(
            shape != (size,) for shape, size in zip(shapes, sizes)
        ):
            raise ValueError(
                f"{type(self).__name__} expects `initial_state` as {len(sizes)} tensors "
                f"of shapes {[(None, size) for size in sizes]}, got {len(initial_state)} "
                f"of shapes {[(None, *shape) for shape in shapes]}."
            )
        return tuple(ops.cast(s, runner.dtype) for s in initial_state)
