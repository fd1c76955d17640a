"""`AuxLossRNN`: any Keras recurrent cell trained with truncated
backpropagation and an auxiliary reconstruction or prediction loss at
random anchors."""

import warnings

import keras
from keras import ops

from keras_auxloss import arguments, recurrence, windows
from keras_auxloss.auxiliary import AuxiliaryDecoder, mean_token_loss
from keras_auxloss.cells import output_size, runner_for, state_sizes
from keras_auxloss.loss_tracker import default_name, in_keras_test_step, loss_tracker

# The seed of the anchors drawn on held-out data in `evaluate`.
HELD_OUT_SEED = 20180301


@keras.saving.register_keras_serializable(package="keras_auxloss")
class AuxLossRNN(keras.layers.Layer):
    """A recurrent network with truncated backpropagation and an
    unsupervised auxiliary loss, for any Keras RNN cell.

    A main network, `cell` run over time as `keras.layers.RNN(cell)` runs
    it, reads the whole sequence. In training, the supervised gradient flows
    back through only the last `bptt` steps, and at `num_anchors` positions
    drawn at random per example an auxiliary decoder either reconstructs the
    `aux_length` tokens that end at the anchor (`aux_loss="reconstruct"`,
    the paper's r-LSTM) or predicts the `aux_length` tokens that follow it
    (`aux_loss="predict"`, p-LSTM). The mean per-token auxiliary loss, times
    `aux_weight`, is added with `add_loss`, so plain `model.fit` trains
    both; its unweighted value is logged as the metric `aux_loss`.

    Truncation is done as in the paper: the layer runs the whole sequence
    once outside the gradient, keeping the recurrent state where each window
    starts, and runs every window again from that state, cut with
    `stop_gradient`. The backpropagated graph is therefore about
    `bptt + num_anchors * aux_length` steps long whatever the sequence
    length, and token inputs are embedded step by step, so no
    `(batch, time, embedding)` tensor is built for the whole sequence.
    Truncation changes gradients, never values: the training output equals
    the inference output for the same weights.

    Every differentiable path (the supervised window, each anchor's window,
    the reconstruction decoder's inputs) reads the embedding as
    `keras.layers.Embedding` does, one lookup per window, so the embedding's
    gradient is a `tf.IndexedSlices` with one slice per token read: the layer
    trains step for step like the same model built from `Embedding`, the
    cell's own Keras layer (state cut with `stop_gradient`) and `Dense`
    layers.

    The decoder's bottom layer, for reconstruction, is a cell of the main
    cell's kind and size (built from its config) that starts from the main
    cell's full state at the anchor; for prediction it is an LSTM cell that
    reads the main network's outputs. Its other layers are LSTM cells of
    `aux_units`, and its head is `Dense(aux_hidden, relu)`, dropout and a
    `Dense` to the vocabulary or the input features.

    Outside training the layer is exactly `keras.layers.RNN(cell)` run over
    the whole sequence: no anchors, no decoder, no added loss.

    Args:
        cell: A Keras RNN cell, as `keras.layers.RNN` takes: `LSTMCell`,
            `GRUCell`, `SimpleRNNCell`, or a cell of your own with
            `state_size` (an int or a list of ints), optionally
            `output_size`, and `call(inputs, states)` returning
            `(output, new_states)`. Cell dropout is not supported. Keras's
            `LSTMCell` runs on a faster path with the same values.
        aux_loss: `"reconstruct"` (default), `"predict"`, or `None` for a
            plain recurrent network truncated to `bptt` steps (the paper's
            baseline).
        num_anchors: Positive int, anchors drawn per example and step.
            Defaults to 1. Windows may overlap; each gets its own truncation.
        aux_length: Int, the subsequence length `l`: tokens reconstructed
            before an anchor (anchor included) or predicted after it.
            At least 2 for `"reconstruct"` (the decoder is fed the first
            token of the window and predicts the other `l - 1`). Defaults
            to 600.
        bptt: Positive int, how many final steps the supervised gradient
            flows through, or `None` for full backpropagation ("Full BP").
            The auxiliary gradient stays truncated either way. Defaults to
            300.
        vocab_size: Int or `None`. An int means inputs are integer token ids
            `(batch, time)` in `[0, vocab_size)`, embedded by the layer, and
            the auxiliary head predicts token ids with cross entropy. `None`
            means inputs are floats `(batch, time, features)` and the head
            regresses the input vectors with mean squared error. Defaults
            to `None`.
        embedding_dim: Positive int, size of the token embedding (token
            inputs only). Defaults to 128.
        aux_units: Positive int, size of the decoder's upper LSTM layers (and
            of its bottom one for `"predict"`). Defaults to the cell's output
            size; with `"reconstruct"` it must equal it.
        aux_layers: Positive int, number of decoder layers. Defaults to 2.
        aux_hidden: Positive int, width of the decoder's feed-forward head.
            Defaults to 256.
        aux_dropout: Float in `[0, 1)`, dropout in the head. Defaults to 0.5.
        aux_weight: Non-negative float, weight of the auxiliary loss in the
            total loss. Defaults to 1.0.
        scheduled_sampling: Float in `[0, 1]`, the probability of feeding
            the reconstruction decoder its own sampled prediction instead of
            the true token at each step after the first. Token inputs with
            `"reconstruct"` only; its embedding gradient is dense. Defaults
            to 0.0 (teacher forcing).
        return_sequences: Bool, return every step's output instead of the
            last one. In training, outputs before the last `bptt` steps
            carry no gradient. Defaults to `False`.
        return_state: Bool, also return the final state tensors (for an
            LSTM cell `h` and `c`). Defaults to `False`.
        mask_zero: Bool, treat token id 0 as padding and mask it (token
            inputs only), as `keras.layers.Embedding(mask_zero=True)` does.
            Defaults to `False`.
        validate_inputs: Bool, check every batch at run time: token ids
            must lie in `[0, vocab_size)`, float inputs must be finite; a
            bad batch raises `InvalidArgumentError` naming the problem.
            Unchecked, an id of `vocab_size` or more fails in the embedding
            lookup on CPU, but a negative id is read from the end of the
            table and a NaN input makes the loss NaN (stop training on it
            with `keras.callbacks.TerminateOnNaN`). XLA drops the checks.
            Defaults to `False`.
        seed: Int or `None`, seed of the anchors, the head's dropout and
            scheduled sampling.
        stateful: Bool, carry the final state of each sequence in a batch
            over to the same row of the next batch (streams read in
            chunks), cut from the gradient; `reset_state()` zeroes it.
            Needs a fixed batch size. Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Token ids `(batch, time)` when `vocab_size` is set (float
            tensors are cast to int32, as `keras.layers.Embedding` does,
            since a Sequential model without an `Input` hands its layers
            floats), else floats `(batch, time, features)`.
        training: Bool. Only in training are anchors drawn, the auxiliary
            loss added and gradients truncated (and in `evaluate`, which
            measures the auxiliary loss on held-out data).
        initial_state: Optional list of tensors, the main network's state
            before the first step (one per state tensor of the cell; for an
            LSTM `[h, c]`), as in `keras.layers.LSTM`.

    Output shape:
        `(batch, output_size)`, or `(batch, time, output_size)` with
        `return_sequences=True`; with `return_state=True`, a list of the
        output and each final state tensor `(batch, size)`.

    Masking:
        A mask from an upstream layer (`keras.layers.Masking`, an
        `Embedding` with `mask_zero=True`) or from `mask_zero` marks the
        valid steps of right-padded sequences. A masked step leaves the
        state and output as they were, so the output is that after each
        sequence's last valid step, as in `keras.layers.RNN`. In training,
        the supervised window is the last `bptt` valid steps of each
        sequence (its first `bptt` steps if it is shorter), anchors fall on
        each sequence's valid steps only, and masked targets add nothing to
        the auxiliary loss. A sequence shorter than one auxiliary window
        gets no anchor: it adds nothing to the auxiliary loss, which
        averages over the tokens of the other sequences (0 if none has
        room). With `return_sequences=True` the mask is passed on.

    Example:

    >>> layer = AuxLossRNN(keras.layers.GRUCell(32), vocab_size=256,
    ...                    aux_length=20, bptt=10)
    >>> tokens = np.random.randint(0, 256, size=(4, 100))
    >>> layer(tokens).shape
    (4, 32)

    Reference:
        - [Trinh et al., 2018](https://arxiv.org/abs/1803.00144), "Learning
          Longer-term Dependencies in RNNs with Auxiliary Losses".
    """

    def __init__(
        self,
        cell,
        aux_loss="reconstruct",
        num_anchors=1,
        aux_length=600,
        bptt=300,
        vocab_size=None,
        embedding_dim=128,
        aux_units=None,
        aux_layers=2,
        aux_hidden=256,
        aux_dropout=0.5,
        aux_weight=1.0,
        scheduled_sampling=0.0,
        return_sequences=False,
        return_state=False,
        mask_zero=False,
        validate_inputs=False,
        seed=None,
        stateful=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        arguments.check_cell(cell)
        units = output_size(cell)
        aux_units = units if aux_units is None else aux_units
        arguments.check_arguments(
            units=units,
            aux_loss=aux_loss,
            num_anchors=num_anchors,
            aux_length=aux_length,
            bptt=bptt,
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            aux_units=aux_units,
            aux_layers=aux_layers,
            aux_hidden=aux_hidden,
            aux_dropout=aux_dropout,
            aux_weight=aux_weight,
            scheduled_sampling=scheduled_sampling,
            return_sequences=return_sequences,
            return_state=return_state,
            mask_zero=mask_zero,
            validate_inputs=validate_inputs,
            seed=seed,
            stateful=stateful,
        )
        self.aux_loss = aux_loss
        self.num_anchors = num_anchors
        self.aux_length = aux_length
        self.bptt = bptt
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.aux_units = aux_units
        self.aux_layers = aux_layers
        self.aux_hidden = aux_hidden
        self.aux_dropout = float(aux_dropout)
        self.aux_weight = float(aux_weight)
        self.scheduled_sampling = float(scheduled_sampling)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.mask_zero = mask_zero
        self.validate_inputs = validate_inputs
        self.stateful = stateful
        self.states = None
        self.seed = seed
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)

        self.embedding = None
        if vocab_size is not None:
            self.embedding = keras.layers.Embedding(
                vocab_size, embedding_dim, dtype=self.dtype_policy, name="embedding"
            )
        # Tracked after the embedding: the order of the weights (and of the
        # optimizer's variables in saved files) is that of version 0.1.0.
        self.cell = cell
        self.decoder_cells = []
        if aux_loss is not None:
            self.decoder_cells = self._make_decoder_cells()
            self.head_hidden = keras.layers.Dense(
                aux_hidden, activation="relu", dtype=self.dtype_policy, name="head_hidden"
            )
            self.aux_loss_tracker = loss_tracker(self.aux_loss_metric_name)
            if "name" not in kwargs and self.aux_loss_metric_name != "aux_loss":
                warnings.warn(
                    f"{type(self).__name__} {self.name!r} logs its auxiliary loss as "
                    f"{self.aux_loss_metric_name!r}: an unnamed layer of its kind was "
                    "made before it in this Keras session, and only the first logs "
                    "'aux_loss'. Building another model, call "
                    "keras.backend.clear_session() first; or name the layer.",
                    stacklevel=2,
                )

    def _make_decoder_cells(self):
        cells = [
            keras.layers.LSTMCell(self.aux_units, dtype=self.dtype_policy, name=f"decoder_cell_{i}")
            for i in range(self.aux_layers)
        ]
        if self.aux_loss == "reconstruct":
            # The bottom layer starts from the main cell's full state.
            config = {**self.cell.get_config(), "name": "decoder_cell_0"}
            cells[0] = type(self.cell).from_config(config)
        return cells

    @property
    def units(self):
        """The size of the main network's output."""
        return output_size(self.cell)

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        name = type(self).__name__
        if self.vocab_size is not None:
            if len(input_shape) != 2:
                raise ValueError(
                    f"{name} with vocab_size={self.vocab_size} expects token "
                    f"ids of shape (batch, time), got inputs of shape {input_shape}. "
                    "For float inputs of shape (batch, time, features), set "
                    "vocab_size=None."
                )
            self.embedding.build(input_shape)
            input_dim = self.embedding_dim
        else:
            if len(input_shape) != 3 or input_shape[-1] is None:
                raise ValueError(
                    f"{name} with vocab_size=None expects float inputs of "
                    "shape (batch, time, features) with known features, got "
                    f"inputs of shape {input_shape}. For token ids of shape "
                    "(batch, time), set `vocab_size`."
                )
            input_dim = input_shape[-1]
        self._check_length(input_shape[1])
        if not self.cell.built:
            self.cell.build((None, input_dim))
        self._main = runner_for(self.cell)
        if self.stateful:
            self._create_state_variables(input_shape[0])
        if self.aux_loss is not None:
            decoder_input_dim = input_dim if self.aux_loss == "reconstruct" else self.units
            for i, cell in enumerate(self.decoder_cells):
                cell.build((None, decoder_input_dim if i == 0 else output_size(cell)))
            self.head_hidden.build((None, output_size(self.decoder_cells[-1])))
            self.head_output = keras.layers.Dense(
                self.vocab_size or input_dim, dtype=self.dtype_policy, name="head_output"
            )
            self.head_output.build((None, self.aux_hidden))
            self._decoder = AuxiliaryDecoder(
                self.decoder_cells,
                self.head_hidden,
                self.head_output,
                self.aux_dropout,
                self.seed_generator,
            )
        self.built = True

    # ---------------------------------------------------------------- state

    def _create_state_variables(self, batch):
        if batch is None:
            raise ValueError(
                f"{type(self).__name__} with stateful=True needs a fixed batch size, "
                "to keep one state per sequence from batch to batch; got inputs of "
                "unknown batch size. Give it one: keras.Input(shape, batch_size=...)."
            )
        self.states = [
            self.add_weight(
                shape=(batch, size),
                initializer="zeros",
                trainable=False,
                autocast=False,  # Kept in float32, written whole.
                name=f"state_{i}",
            )
            for i, size in enumerate(state_sizes(self.cell))
        ]

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

    def _initial_state(self, batch, initial_state):
        """Where the main network starts: `initial_state` if given, else the
        carried state of a stateful layer, else zeros."""
        sizes = state_sizes(self.cell)
        if initial_state is None and self.states is not None:
            initial_state = [variable.value for variable in self.states]
        if initial_state is None:
            return self._main.zero_state(batch, self.compute_dtype)
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
        return tuple(ops.cast(s, self.compute_dtype) for s in initial_state)

    def _check_length(self, length):
        """Checks that every window fits in a sequence of `length` steps."""
        if length is None:
            return  # Checked in `call`, batch by batch.
        if self.bptt is not None and self.bptt > length:
            raise ValueError(
                f"Received bptt={self.bptt}, but the sequence length is "
                f"{length}: the supervised window must lie inside the sequence. "
                "Use a smaller `bptt`, or bptt=None for full backpropagation."
            )
        if self.aux_loss is not None and self._window_span > length:
            raise ValueError(
                f"Received aux_length={self.aux_length} with aux_loss="
                f"{self.aux_loss!r} and num_anchors={self.num_anchors}, but the "
                f"sequence length is {length}: each anchor's window spans "
                f"{self._window_span} steps and must lie inside the sequence."
            )

    @property
    def _shortest_length(self):
        """The fewest steps in which every training window fits."""
        return max(self.bptt or 1, self._window_span if self.aux_loss else 1)

    @property
    def _window_span(self):
        # A prediction window also reads the token after its last step.
        return self.aux_length + (self.aux_loss == "predict")

    # ------------------------------------------------------------------- call

    @property
    def aux_loss_metric_name(self):
        """The name under which `fit` and `evaluate` log the auxiliary loss
        (`val_` prefixed for `fit`'s validation): `aux_loss` for a layer
        with its class's default name (the first of a model), else
        `<layer name>_aux_loss`, so that several layers log apart."""
        return "aux_loss" if self.name == default_name(type(self)) else f"{self.name}_aux_loss"

    def call(self, inputs, training=False, mask=None, initial_state=None):
        inputs = self._standardize_inputs(inputs)
        # Measured in training and on held-out data in `evaluate`; `predict`
        # and exported models run the main network alone.
        measuring = self.aux_loss is not None and not training and in_keras_test_step()
        mask = self.compute_mask(inputs, mask, own_only=True)
        sequence = ops.moveaxis(inputs, 1, 0)  # Time-major: (time, batch, ...).
        steps_mask = None if mask is None else ops.moveaxis(mask, 1, 0)
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        initial = self._initial_state(batch, initial_state)
        zero_output = ops.zeros((batch, self.units), self.compute_dtype)

        if not (training or measuring):
            output, state, sequences, _ = recurrence.run(
                self._main.step,
                sequence,
                initial,
                zero_output,
                input_fn=self._step_inputs(inputs.shape[1]),
                mask=steps_mask,
                return_sequences=self.return_sequences,
            )
            return self._outputs(output, state, sequences)

        if inputs.shape[1] is None:  # Unknown at build: check every batch.
            length = self._assert_long_enough(length)
        # Each sequence ends after its last valid step: windows count from there.
        ends = windows.sequence_ends(mask, batch, length)
        supervised_start = None if self.bptt is None else windows.supervised_starts(ends, self.bptt)
        window_starts = None
        if self.aux_loss is not None:
            draw = self._sample_window_starts if training else self._held_out_window_starts
            window_starts = draw(ends)
        output, state, sequences, anchor_states = self._truncated_run(
            sequence, steps_mask, initial, zero_output, supervised_start, window_starts
        )
        if self.aux_loss is not None:
            fits = ends >= self._window_span
            loss, tokens = self._auxiliary_loss(
                sequence, steps_mask, window_starts, fits, anchor_states, training
            )
            self.add_loss(self.aux_weight * loss)
            self.aux_loss_tracker.update_state(loss, sample_weight=tokens)
        return self._outputs(output, state, sequences)

    def _truncated_run(self, sequence, steps_mask, initial, zero_output, supervised, anchors):
        """Truncated backpropagation, as the paper does it.

        One pass outside the gradient over the whole sequence captures the
        state where each window starts (after step `start - 1`: slot 0 the
        supervised window's, the others the anchors'); the supervised window
        is then run again, differentiably, from its captured state cut with
        `stop_gradient`. With `bptt=None` the one pass is differentiable.

        Returns `(output, state, sequences, anchor_states)`, the last the
        anchors' cut start states, `(batch, num_anchors, size)` each.
        """
        capture = [] if supervised is None else [supervised[:, None] - 1]
        capture += [] if anchors is None else [anchors - 1]
        capture = ops.concatenate(capture, axis=1) if capture else None
        options = dict(mask=steps_mask, return_sequences=self.return_sequences)
        if self.bptt is None:
            inputs, input_fn = self._window_inputs(sequence)
            options.update(input_fn=input_fn, capture_after=capture)
            output, state, sequences, captured = recurrence.run(
                self._main.step, inputs, initial, zero_output, **options
            )
        else:
            prefix, captured = self._find_states(sequence, initial, zero_output, capture, options)
            # The truncation: the supervised window starts from a cut state.
            start = tuple(ops.stop_gradient(s[:, 0]) for s in captured)
            window = windows.gather_windows(sequence, supervised[:, None], self.bptt)
            inputs, input_fn = self._window_inputs(window)
            if steps_mask is not None:
                options["mask"] = windows.gather_windows(steps_mask, supervised[:, None], self.bptt)
            output, state, sequences, _ = recurrence.run(
                self._main.step, inputs, start, zero_output, input_fn=input_fn, **options
            )
            if self.return_sequences:
                sequences = windows.place_window(ops.stop_gradient(prefix), sequences, supervised)
        anchor_states = None
        if anchors is not None:
            anchor_states = tuple(ops.stop_gradient(s[:, -self.num_anchors :]) for s in captured)
        return output, state, sequences, anchor_states

    def _find_states(self, sequence, initial, zero_output, capture, options):
        """The pass outside the gradient: `(sequences, captured)`, the states
        after the steps in `capture` (and every output if asked). It stops
        at the last window's start unless every output is wanted."""
        with self._frozen():
            _, _, sequences, captured = recurrence.run(
                self._main.step,
                ops.stop_gradient(sequence),
                initial,
                zero_output,
                input_fn=self._step_inputs(sequence.shape[0]),
                capture_after=capture,
                num_steps=None if self.return_sequences else ops.max(capture) + 1,
                **options,
            )
        return sequences, captured

    def _assert_long_enough(self, length):
        """`length`, checked at run time to be long enough to train on."""
        return recurrence.assert_at_least(
            length,
            self._shortest_length,
            f"{type(self).__name__} with bptt={self.bptt}, aux_loss={self.aux_loss!r} "
            f"and aux_length={self.aux_length} trains on sequences of at least "
            f"{self._shortest_length} steps; got a batch of shorter ones (length, minimum):",
        )

    def _standardize_inputs(self, inputs):
        """Inputs as the layer computes with them, checked if asked: any
        tensor-like (a `tf.Variable` too), token ids of any integer dtype
        (cast to int32 unless int64, as `keras.layers.Embedding` does)."""
        name = type(self).__name__
        inputs = ops.convert_to_tensor(inputs)
        if not hasattr(inputs, "ndim"):  # A tf.Variable stays one: read it.
            inputs = ops.copy(inputs)
        if self.vocab_size is None:
            # Integer features (rank 3: build rejects rank-2 ids) are numbers.
            inputs = ops.cast(inputs, self.compute_dtype)
            return recurrence.assert_finite(inputs, name) if self.validate_inputs else inputs
        if keras.backend.standardize_dtype(inputs.dtype) not in ("int32", "int64"):
            # Keras hands a Sequential model without an Input layer its data
            # as floats, NumPy and tfds hand pixels as uint8; like
            # keras.layers.Embedding, read them as int32 ids.
            inputs = ops.cast(inputs, "int32")
        if self.validate_inputs:
            inputs = recurrence.assert_token_ids(inputs, self.vocab_size, name)
        return inputs

    def compute_mask(self, inputs, mask=None, own_only=False):
        """The input mask and, with `mask_zero`, the non-zero token ids.

        The output carries the mask only with `return_sequences`.
        """
        if self.mask_zero:
            nonzero = ops.not_equal(inputs, 0)
            mask = nonzero if mask is None else ops.logical_and(ops.cast(mask, "bool"), nonzero)
        elif mask is not None:
            mask = ops.cast(mask, "bool")
        if own_only:
            return mask
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(state_sizes(self.cell))
        return output_mask

    def _sample_window_starts(self, ends):
        """The anchors: `(batch, num_anchors)` first steps of their windows."""
        return windows.sample_window_starts(
            ends, self.num_anchors, self._window_span, self.seed_generator
        )

    def _held_out_window_starts(self, ends):
        """Anchors on held-out data: drawn with a fixed seed, so that every
        evaluation measures the same windows and its losses compare."""
        return windows.sample_window_starts(
            ends, self.num_anchors, self._window_span, HELD_OUT_SEED
        )

    def _outputs(self, output, state, sequences):
        if self.stateful:  # Carried to the next batch, cut from the gradient.
            for variable, value in zip(self.states, state):
                variable.assign(ops.cast(ops.stop_gradient(value), variable.dtype))
        if sequences is not None:
            output = ops.moveaxis(sequences, 0, 1)
        if self.return_state:
            return [output, *state]
        return output

    # ---------------------------------------------------- main network inputs

    def _embed(self, ids):
        """Token ids' embeddings, read as `keras.layers.Embedding` reads them.

        Every differentiable path reads the embedding here, so that its
        gradient is a `tf.IndexedSlices` with one slice per token read, as
        that of a model built from `keras.layers.Embedding`: Keras's
        optimizers update such a gradient differently from a dense one (Adam
        squares it slice by slice), so a dense gradient would train
        differently.
        """
        return self.embedding(ids)

    def _frozen(self):
        """A scope in which the main network's weights (cell, embedding) are
        cut from the gradient, for the pass that only finds states."""
        layers = [self.cell] + ([self.embedding] if self.embedding is not None else [])
        weights = [w for layer in layers for w in layer.weights]
        return keras.StatelessScope(
            state_mapping=[(w, ops.stop_gradient(w.value)) for w in weights]
        )

    def _uses_token_table(self, length):
        """Whether a pass over a whole sequence of `length` steps looks its
        gates up in a table of every token's (cheaper when the vocabulary is
        no larger than one sequence). Only where no gradient is taken: the
        pass that finds the windows' states, and inference."""
        return length is not None and self.vocab_size <= length

    def _step_inputs(self, length):
        """A function from one step's input to what the main cell's step
        reads, for passes over the whole sequence: tokens are embedded one
        step at a time, so no `(time, batch, embedding)` tensor is built."""
        if self.vocab_size is None:
            return self._main.project
        embeddings = ops.cast(self.embedding.embeddings, self.compute_dtype)
        if self._uses_token_table(length):
            table = self._main.token_table(embeddings)
            if table is not None:
                return lambda ids: ops.take(table, ids, axis=0)
        return lambda ids: self._main.project(ops.take(embeddings, ids, axis=0))

    def _window_inputs(self, window):
        """`(inputs, input_fn)` for a differentiable run over `window`.

        Token windows are embedded with `_embed` and projected before the
        loop. Float inputs are projected step by step, as in `_step_inputs`,
        so that a window gives bit-for-bit the values of the full pass.
        """
        if self.vocab_size is not None:
            return self._main.project(self._embed(window)), None
        return window, self._main.project

    # ------------------------------------------------------- auxiliary loss

    def _auxiliary_loss(self, sequence, steps_mask, window_starts, fits, anchor_states, training):
        """Mean per-token auxiliary loss over all anchors' windows.

        Each window runs the main cell from its state cut from the gradient,
        then the decoder. Returns `(loss, tokens)`: tokens counts the
        predicted tokens; windows of sequences too short for them (`fits`
        false) and masked targets count for nothing.
        """
        span, length = self._window_span, self.aux_length
        data = windows.gather_windows(sequence, window_starts, span)
        window_mask = None
        if steps_mask is not None:
            window_mask = windows.gather_windows(steps_mask, window_starts, span)
        # Examples and their anchors share one batch axis: (batch * anchors).
        state = tuple(ops.reshape(s, (-1, s.shape[-1])) for s in anchor_states)
        # A token window is embedded once: the main cell and the
        # reconstruction decoder both read these embeddings.
        if self.vocab_size is None:
            main_inputs, input_fn = data[:length], self._main.project
        else:
            inputs = self._embed(data[:length])
            main_inputs, input_fn = self._main.project(inputs), None
        zero_output = ops.zeros((ops.shape(data)[1], self.units), self.compute_dtype)
        _, state, outputs, _ = recurrence.run(
            self._main.step,
            main_inputs,
            state,
            zero_output,
            input_fn=input_fn,
            mask=None if window_mask is None else window_mask[:length],
            return_sequences=self.aux_loss == "predict",
        )
        data = ops.stop_gradient(data)  # Targets are data, not paths for gradient.
        if self.vocab_size is None:
            inputs = data[:length]
        predictions = self._decode(data, inputs, state, outputs, training)
        weights = ops.repeat(ops.cast(fits, "float32"), self.num_anchors)[None, :]
        if window_mask is not None:
            weights = weights * ops.cast(window_mask[1:], "float32")
        return mean_token_loss(predictions, data[1:], weights, self.vocab_size)

    def _decode(self, data, inputs, state, outputs, training):
        """The decoder's predictions of `data[1:]`: from the main state at
        the anchor fed `inputs[:-1]` (reconstruct), or reading the main
        network's `outputs` (predict)."""
        batch = ops.shape(data)[1]
        states = self._decoder.zero_states(batch, self.compute_dtype)
        if self.aux_loss == "predict":
            return self._decoder.decode(outputs, states, training)
        states[0] = state
        if self.scheduled_sampling and training:
            embeddings = ops.cast(self.embedding.embeddings, self.compute_dtype)
            return self._decoder.decode_with_sampling(
                data[:-1],
                states,
                lambda ids: ops.take(embeddings, ids, axis=0),
                self.vocab_size,
                self.scheduled_sampling,
            )
        return self._decoder.decode(inputs[:-1], states, training)

    # ---------------------------------------------------------------- config

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        output = (batch, length, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output] + [(batch, size) for size in state_sizes(self.cell)]
        return output

    def _config(self):
        """The configuration shared by every layer of the family."""
        return {
            "aux_loss": self.aux_loss,
            "num_anchors": self.num_anchors,
            "aux_length": self.aux_length,
            "bptt": self.bptt,
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "aux_units": self.aux_units,
            "aux_layers": self.aux_layers,
            "aux_hidden": self.aux_hidden,
            "aux_dropout": self.aux_dropout,
            "aux_weight": self.aux_weight,
            "scheduled_sampling": self.scheduled_sampling,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "mask_zero": self.mask_zero,
            "validate_inputs": self.validate_inputs,
            "seed": self.seed,
            "stateful": self.stateful,
        }

    def get_config(self):
        cell = keras.saving.serialize_keras_object(self.cell)
        return {**super().get_config(), "cell": cell, **self._config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)
