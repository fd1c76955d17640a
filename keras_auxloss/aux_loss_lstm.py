"""`AuxLossLSTM`: an LSTM trained with truncated backpropagation and an
auxiliary reconstruction or prediction loss at random anchors."""

import numbers

import keras
from keras import ops

from keras_auxloss import recurrence
from keras_auxloss.recurrence import LSTMState

AUX_LOSSES = ("reconstruct", "predict")


@keras.saving.register_keras_serializable(package="keras_auxloss")
class AuxLossLSTM(keras.layers.Layer):
    """LSTM with truncated backpropagation and an unsupervised auxiliary loss.

    A main LSTM reads the whole sequence. In training, the supervised
    gradient flows back through only the last `bptt` steps, and at
    `num_anchors` positions drawn at random per example an auxiliary decoder
    either reconstructs the `aux_length` tokens that end at the anchor
    (`aux_loss="reconstruct"`, the paper's r-LSTM) or predicts the
    `aux_length` tokens that follow it (`aux_loss="predict"`, p-LSTM). The
    mean per-token auxiliary loss, times `aux_weight`, is added with
    `add_loss`, so plain `model.fit` trains both; its unweighted value is
    logged as the metric `aux_loss`.

    Truncation is done as in the paper: the layer runs the whole sequence
    once outside the gradient, keeping the recurrent state (h, c) where each
    window starts, and runs every window again from that state, cut with
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
    trains step for step like the same model built from `Embedding`, `LSTM`
    (state cut with `stop_gradient`) and `Dense` layers.

    Outside training the layer is exactly its main LSTM run over the whole
    sequence: no anchors, no decoder, no added loss. The main LSTM is a
    `keras.layers.LSTMCell` (attribute `cell`) with Keras's gate layout, so
    its weights can be moved to and from `keras.layers.LSTM`.

    Args:
        units: Positive int, size of the main LSTM.
        aux_loss: `"reconstruct"` (default), `"predict"`, or `None` for a
            plain LSTM truncated to `bptt` steps (the paper's baseline).
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
        aux_units: Positive int, size of the decoder's LSTM layers. Defaults
            to `units`; with `"reconstruct"` it must equal `units`, since the
            decoder's bottom layer starts from the main LSTM's state.
        aux_layers: Positive int, number of decoder LSTM layers. The bottom
            one starts from the main state at the anchor (reconstruct) or
            reads the main LSTM's outputs (predict); the others start at
            zero. Defaults to 2.
        aux_hidden: Positive int, width of the decoder's feed-forward head.
            Defaults to 256.
        aux_dropout: Float in `[0, 1)`, dropout in the head. Defaults to 0.5.
        aux_weight: Non-negative float, weight of the auxiliary loss in the
            total loss. Defaults to 1.0.
        scheduled_sampling: Float in `[0, 1]`, the probability of feeding
            the reconstruction decoder its own sampled prediction instead of
            the true token at each step after the first. Token inputs with
            `"reconstruct"` only. Defaults to 0.0 (teacher forcing).
        return_sequences: Bool, return every step's output instead of the
            last one. In training, outputs before the last `bptt` steps
            carry no gradient. Defaults to `False`.
        return_state: Bool, also return the final `h` and `c`. Defaults to
            `False`.
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
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Token ids `(batch, time)` when `vocab_size` is set (float
            tensors are cast to int32, as `keras.layers.Embedding` does,
            since a Sequential model without an `Input` hands its layers
            floats), else floats `(batch, time, features)`.
        training: Bool. Only in training are anchors drawn, the auxiliary
            loss added and gradients truncated.

    Output shape:
        `(batch, units)`, or `(batch, time, units)` with
        `return_sequences=True`; with `return_state=True`, a list
        `[output, h, c]` with `h` and `c` of shape `(batch, units)`.

    Masking:
        A mask from an upstream layer (`keras.layers.Masking`, an
        `Embedding` with `mask_zero=True`) or from `mask_zero` marks the
        valid steps of right-padded sequences. A masked step leaves the
        state as it was, so the output is the state after each sequence's
        last valid step, as in `keras.layers.LSTM`. In training, the
        supervised window is the last `bptt` valid steps of each sequence
        (its first `bptt` steps if it is shorter), anchors fall on each
        sequence's valid steps only, and masked targets add nothing to the
        auxiliary loss. A sequence shorter than one auxiliary window gets no
        anchor: it adds nothing to the auxiliary loss, which averages over
        the tokens of the other sequences (0 if none has room). With
        `return_sequences=True` the mask is passed on.

    Example:

    >>> layer = AuxLossLSTM(32, vocab_size=256, aux_length=20, bptt=10)
    >>> tokens = np.random.randint(0, 256, size=(4, 100))
    >>> layer(tokens).shape
    (4, 32)

    Reference:
        - [Trinh et al., 2018](https://arxiv.org/abs/1803.00144), "Learning
          Longer-term Dependencies in RNNs with Auxiliary Losses".
    """

    def __init__(
        self,
        units,
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if keras.backend.backend() != "tensorflow":
            raise ValueError(
                "AuxLossLSTM needs the TensorFlow backend (its recurrence is a "
                f"tf.while_loop), but Keras is running on {keras.backend.backend()!r}. "
                "Set KERAS_BACKEND=tensorflow."
            )
        _check_positive_int("units", units)
        if aux_loss not in AUX_LOSSES + (None,):
            raise ValueError(
                "Received an invalid value for argument `aux_loss`, expected "
                f"one of 'reconstruct', 'predict' or None, got {aux_loss!r}."
            )
        _check_positive_int("num_anchors", num_anchors)
        _check_positive_int("aux_length", aux_length)
        if aux_loss == "reconstruct" and aux_length < 2:
            raise ValueError(
                "Received an invalid value for argument `aux_length`, expected "
                "an integer of at least 2 with aux_loss='reconstruct' (the "
                "decoder is fed the window's first token and predicts the "
                f"rest), got {aux_length!r}."
            )
        if bptt is not None:
            _check_positive_int("bptt", bptt)
        if vocab_size is not None:
            _check_positive_int("vocab_size", vocab_size)
        _check_positive_int("embedding_dim", embedding_dim)
        aux_units = units if aux_units is None else aux_units
        _check_positive_int("aux_units", aux_units)
        if aux_loss == "reconstruct" and aux_units != units:
            raise ValueError(
                f"Arguments `aux_units`={aux_units} and `units`={units} conflict: "
                "with aux_loss='reconstruct' the decoder's bottom layer starts "
                "from the main LSTM's state, so they must be equal."
            )
        _check_positive_int("aux_layers", aux_layers)
        _check_positive_int("aux_hidden", aux_hidden)
        _check_number("aux_dropout", aux_dropout, 0.0, 1.0, "a float in [0, 1)", high_open=True)
        _check_number("aux_weight", aux_weight, 0.0, float("inf"), "a non-negative float")
        _check_number("scheduled_sampling", scheduled_sampling, 0.0, 1.0, "a float in [0, 1]")
        if scheduled_sampling and (aux_loss != "reconstruct" or vocab_size is None):
            raise ValueError(
                "Argument `scheduled_sampling` applies only to token inputs "
                "(`vocab_size` set) with aux_loss='reconstruct'; got "
                f"scheduled_sampling={scheduled_sampling!r} with "
                f"aux_loss={aux_loss!r} and vocab_size={vocab_size!r}."
            )
        for name, value in (
            ("return_sequences", return_sequences),
            ("return_state", return_state),
            ("mask_zero", mask_zero),
            ("validate_inputs", validate_inputs),
        ):
            if not isinstance(value, bool):
                raise ValueError(
                    f"Received an invalid value for argument `{name}`, expected "
                    f"a bool, got {value!r}."
                )
        if mask_zero and vocab_size is None:
            raise ValueError(
                "Argument `mask_zero`=True masks the token id 0, so it needs token "
                "inputs: set `vocab_size`, or mask float inputs with keras.layers.Masking."
            )
        if seed is not None and not isinstance(seed, numbers.Integral):
            raise ValueError(
                "Received an invalid value for argument `seed`, expected an "
                f"integer or None, got {seed!r}."
            )

        self.units = units
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
        self.seed = seed
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)

        self.embedding = None
        if vocab_size is not None:
            self.embedding = keras.layers.Embedding(
                vocab_size, embedding_dim, dtype=self.dtype_policy, name="embedding"
            )
        self.cell = keras.layers.LSTMCell(units, dtype=self.dtype_policy, name="cell")
        self.decoder_cells = []
        if aux_loss is not None:
            self.decoder_cells = [
                keras.layers.LSTMCell(aux_units, dtype=self.dtype_policy, name=f"decoder_cell_{i}")
                for i in range(aux_layers)
            ]
            self.head_hidden = keras.layers.Dense(
                aux_hidden, activation="relu", dtype=self.dtype_policy, name="head_hidden"
            )
            self.aux_loss_tracker = keras.metrics.Mean(name="aux_loss")

    # ------------------------------------------------------------------ build

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self.vocab_size is not None:
            if len(input_shape) != 2:
                raise ValueError(
                    f"AuxLossLSTM with vocab_size={self.vocab_size} expects token "
                    f"ids of shape (batch, time), got inputs of shape {input_shape}. "
                    "For float inputs of shape (batch, time, features), set "
                    "vocab_size=None."
                )
            self.embedding.build(input_shape)
            input_dim = self.embedding_dim
        else:
            if len(input_shape) != 3 or input_shape[-1] is None:
                raise ValueError(
                    "AuxLossLSTM with vocab_size=None expects float inputs of "
                    "shape (batch, time, features) with known features, got "
                    f"inputs of shape {input_shape}. For token ids of shape "
                    "(batch, time), set `vocab_size`."
                )
            input_dim = input_shape[-1]
        self._check_length(input_shape[1])
        self.cell.build((None, input_dim))
        if self.aux_loss is not None:
            decoder_input_dim = input_dim if self.aux_loss == "reconstruct" else self.units
            for i, cell in enumerate(self.decoder_cells):
                cell.build((None, decoder_input_dim if i == 0 else self.aux_units))
            self.head_hidden.build((None, self.aux_units))
            self.head_output = keras.layers.Dense(
                self.vocab_size or input_dim, dtype=self.dtype_policy, name="head_output"
            )
            self.head_output.build((None, self.aux_hidden))
        self.built = True

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

    def call(self, inputs, training=False, mask=None):
        if self.vocab_size is None:
            # Integer features (rank 3: build rejects rank-2 ids) are numbers.
            inputs = ops.cast(inputs, self.compute_dtype)
        elif not keras.backend.is_int_dtype(inputs.dtype):
            # Keras hands a Sequential model without an Input layer its data
            # as floats; like keras.layers.Embedding, read them as ids.
            inputs = ops.cast(inputs, "int32")
        if self.validate_inputs:
            if self.vocab_size is None:
                inputs = recurrence.assert_finite(inputs)
            else:
                inputs = recurrence.assert_token_ids(inputs, self.vocab_size)
        mask = self.compute_mask(inputs, mask, own_only=True)
        sequence = ops.moveaxis(inputs, 1, 0)  # Time-major: (time, batch, ...).
        steps_mask = None if mask is None else ops.moveaxis(mask, 1, 0)
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        zeros = ops.zeros((batch, self.units), self.compute_dtype)
        initial = LSTMState(zeros, zeros)

        if not training:
            state, sequences, _ = recurrence.run_lstm(
                sequence,
                self._step_gates(inputs.shape[1]),
                initial,
                self.cell.recurrent_kernel,
                mask=steps_mask,
                return_sequences=self.return_sequences,
            )
            return self._outputs(state, sequences)

        if inputs.shape[1] is None:  # Unknown at build: check every batch.
            length = recurrence.assert_at_least(
                length,
                self._shortest_length,
                f"AuxLossLSTM with bptt={self.bptt}, aux_loss={self.aux_loss!r} and "
                f"aux_length={self.aux_length} trains on sequences of at least "
                f"{self._shortest_length} steps; got a batch of shorter ones (length, "
                "minimum):",
            )
        # Each sequence ends after its last valid step: windows count from there.
        ends = _sequence_ends(mask, batch, length)
        # States are captured after step `start - 1`: slot 0 is the
        # supervised window's, the next `num_anchors` the anchors' windows'.
        capture = []
        if self.bptt is not None:
            supervised_start = ops.maximum(ends - self.bptt, 0)
            capture.append(supervised_start[:, None] - 1)
        if self.aux_loss is not None:
            window_starts = self._sample_window_starts(ends)
            capture.append(window_starts - 1)
        capture = ops.concatenate(capture, axis=1) if capture else None

        if self.bptt is None:
            state, sequences, captured = recurrence.run_lstm(
                *self._window_gates(sequence),
                initial,
                self.cell.recurrent_kernel,
                mask=steps_mask,
                capture_after=capture,
                return_sequences=self.return_sequences,
            )
        else:
            # One pass outside the gradient finds where the windows start; it
            # can stop at the last of them unless every output is wanted.
            _, prefix, captured = recurrence.run_lstm(
                ops.stop_gradient(sequence),
                self._step_gates(inputs.shape[1], differentiable=False),
                initial,
                ops.stop_gradient(self.cell.recurrent_kernel),
                mask=steps_mask,
                capture_after=capture,
                num_steps=None if self.return_sequences else ops.max(capture) + 1,
                return_sequences=self.return_sequences,
            )
            starts = supervised_start[:, None]
            state, window, _ = recurrence.run_lstm(
                *self._window_gates(_gather_windows(sequence, starts, self.bptt)),
                LSTMState(*(ops.stop_gradient(s[:, 0]) for s in captured)),
                self.cell.recurrent_kernel,
                mask=None if mask is None else _gather_windows(steps_mask, starts, self.bptt),
                return_sequences=self.return_sequences,
            )
            if self.return_sequences:
                sequences = _place_window(ops.stop_gradient(prefix), window, supervised_start)

        if self.aux_loss is not None:
            # Each window starts from its state cut from the gradient.
            anchor_states = LSTMState(
                *(ops.stop_gradient(s[:, -self.num_anchors :]) for s in captured)
            )
            loss, tokens = self._auxiliary_loss(
                sequence, steps_mask, window_starts, ends >= self._window_span, anchor_states
            )
            self.add_loss(self.aux_weight * loss)
            self.aux_loss_tracker.update_state(loss, sample_weight=tokens)
        return self._outputs(state, sequences if self.return_sequences else None)

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
        return [output_mask, None, None] if self.return_state else output_mask

    def _sample_window_starts(self, ends):
        """First steps of the anchors' windows, uniform over those that fit.

        A reconstruction window ends at its anchor, `start + aux_length - 1`;
        a prediction window starts at its anchor. Windows lie before each
        sequence's end; a sequence too short for any gets start 0 (its
        windows are left out of the loss). Returns `(batch, num_anchors)`
        int32.
        """
        room = ops.maximum(ends - self._window_span + 1, 1)[:, None]
        uniform = keras.random.uniform(
            (ops.shape(ends)[0], self.num_anchors), seed=self.seed_generator
        )
        starts = ops.cast(ops.floor(uniform * ops.cast(room, "float32")), "int32")
        return ops.minimum(starts, room - 1)

    def _outputs(self, state, sequences):
        output = state.hidden if sequences is None else ops.moveaxis(sequences, 0, 1)
        if self.return_state:
            return [output, state.hidden, state.cell]
        return output

    # ------------------------------------------------------- main LSTM inputs

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

    def _token_table(self, cell):
        """`(vocab_size, 4 * units)` gate pre-activations of every token."""
        return ops.matmul(self.embedding.embeddings, cell.kernel) + cell.bias

    def _uses_token_table(self, length):
        """Whether a pass over a whole sequence of `length` steps looks its
        gates up in `_token_table` rather than projecting each step's
        embedding: cheaper when the vocabulary is no larger than one
        sequence, and used only where no gradient is taken (the pass that
        finds the windows' states, and inference)."""
        return length is not None and self.vocab_size <= length

    def _step_gates(self, length, differentiable=True):
        """A function from one step's input to the main cell's gates.

        Used for passes that read the whole sequence: tokens are embedded
        one step at a time, so no `(time, batch, embedding)` tensor is built.
        """
        keep = (lambda x: x) if differentiable else ops.stop_gradient
        kernel, bias = keep(self.cell.kernel), keep(self.cell.bias)
        if self.vocab_size is None:
            return lambda x: ops.matmul(x, kernel) + bias
        if self._uses_token_table(length):
            table = keep(self._token_table(self.cell))
            return lambda ids: ops.take(table, ids, axis=0)
        embeddings = keep(ops.cast(self.embedding.embeddings, self.compute_dtype))
        return lambda ids: ops.matmul(ops.take(embeddings, ids, axis=0), kernel) + bias

    def _window_gates(self, window):
        """`(inputs, input_gates)` for a differentiable run over `window`.

        Token windows are embedded with `_embed` and projected before the
        loop. Float inputs are projected step by step, as in `_step_gates`,
        so that a window gives bit-for-bit the values of the full pass.
        """
        if self.vocab_size is not None:
            return self._project(self._embed(window), self.cell), None
        return window, self._step_gates(None)

    @staticmethod
    def _project(inputs, cell):
        """A cell's gate pre-activations `inputs @ kernel + bias`."""
        return ops.matmul(inputs, cell.kernel) + cell.bias

    # ------------------------------------------------------- auxiliary loss

    def _auxiliary_loss(self, sequence, steps_mask, window_starts, fits, anchor_states):
        """Mean per-token auxiliary loss over all anchors' windows.

        Returns `(loss, tokens)`: tokens counts the predicted tokens; windows
        of sequences too short for them (`fits` false) and masked targets
        count for nothing.
        """
        windows = _gather_windows(sequence, window_starts, self._window_span)
        window_mask = None
        if steps_mask is not None:
            window_mask = _gather_windows(steps_mask, window_starts, self._window_span)
        # Examples and their anchors share one batch axis: (batch * anchors).
        initial = LSTMState(*(ops.reshape(s, (-1, self.units)) for s in anchor_states))
        # A token window is embedded once: the main LSTM and the
        # reconstruction decoder both read these embeddings.
        embedded = None
        if self.vocab_size is None:
            main_inputs = self._window_gates(windows[: self.aux_length])
        else:
            embedded = self._embed(windows[: self.aux_length])
            main_inputs = (self._project(embedded, self.cell), None)
        state, outputs, _ = recurrence.run_lstm(
            *main_inputs,
            initial,
            self.cell.recurrent_kernel,
            mask=None if window_mask is None else window_mask[: self.aux_length],
            return_sequences=self.aux_loss == "predict",
        )
        # The decoder's inputs and targets are data, not paths for gradient.
        data = ops.stop_gradient(windows)
        targets = data[1:]
        zeros = ops.zeros_like(state.hidden)
        if self.aux_loss == "predict":
            # The decoder reads the main LSTM's outputs from the anchor on.
            first_gates = self._project(outputs, self.decoder_cells[0])
            states = [LSTMState(zeros, zeros)] * self.aux_layers
            predictions = self._head(self._decode(first_gates, states))
        else:
            # The decoder starts from the state at the anchor, is fed the
            # window's first token and predicts each next one.
            states = [state] + [LSTMState(zeros, zeros)] * (self.aux_layers - 1)
            if self.scheduled_sampling:
                predictions = self._decode_with_sampling(data[:-1], states)
            else:
                inputs = data[:-1] if embedded is None else embedded[:-1]
                first_gates = self._project(inputs, self.decoder_cells[0])
                predictions = self._head(self._decode(first_gates, states))
        predictions = ops.cast(predictions, "float32")
        if self.vocab_size is None:
            per_token = ops.mean(ops.square(predictions - ops.cast(targets, "float32")), axis=-1)
        else:
            per_token = keras.losses.sparse_categorical_crossentropy(
                targets, predictions, from_logits=True
            )
        weights = ops.repeat(ops.cast(fits, "float32"), self.num_anchors)[None, :]
        if window_mask is not None:
            weights = weights * ops.cast(window_mask[1:], "float32")
        weights = ops.broadcast_to(weights, ops.shape(per_token))
        tokens = ops.sum(weights)
        return ops.sum(per_token * weights) / ops.maximum(tokens, 1.0), tokens

    def _decode(self, first_gates, states):
        """Runs the decoder's LSTM stack; returns the top layer's outputs."""
        outputs = None
        for i, (cell, state) in enumerate(zip(self.decoder_cells, states)):
            gates = first_gates if i == 0 else self._project(outputs, cell)
            _, outputs, _ = recurrence.run_lstm(
                gates, None, state, cell.recurrent_kernel, return_sequences=True
            )
        return outputs

    def _head(self, outputs, dropout_mask=None):
        hidden = self.head_hidden(outputs)
        if dropout_mask is not None:
            hidden = hidden * dropout_mask
        elif self.aux_dropout:
            hidden = keras.random.dropout(hidden, self.aux_dropout, seed=self.seed_generator)
        return self.head_output(hidden)

    def _decode_with_sampling(self, inputs, states):
        """Decodes step by step, feeding back sampled predictions.

        At each step after the first, with probability `scheduled_sampling`,
        the decoder is fed the token it sampled at the previous step instead
        of the true one. All randomness is drawn before the loop.
        """
        steps, batch = ops.shape(inputs)[0], ops.shape(inputs)[1]
        feed_sample = ops.logical_and(
            keras.random.uniform((steps, batch), seed=self.seed_generator)
            < self.scheduled_sampling,
            ops.arange(steps)[:, None] > 0,
        )
        # Gumbel noise: argmax(logits + noise) samples from softmax(logits).
        uniform = keras.random.uniform(
            (steps, batch, self.vocab_size), minval=1e-20, maxval=1.0, seed=self.seed_generator
        )
        noise = -ops.log(-ops.log(uniform))
        dropout_mask = ops.ones((steps, batch, self.aux_hidden), self.compute_dtype)
        if self.aux_dropout:
            dropout_mask = keras.random.dropout(
                dropout_mask, self.aux_dropout, seed=self.seed_generator
            )
        # Sampled tokens are known only inside the loop, so each step embeds
        # its own (the embedding's gradient is dense here: no Keras layer
        # composition does scheduled sampling to compare with).
        embeddings = ops.cast(self.embedding.embeddings, self.compute_dtype)
        first = self.decoder_cells[0]

        def step(carry, x):
            sampled, states, _ = carry
            true_ids, use_sample, noise, mask = x
            ids = ops.where(use_sample, sampled, true_ids)
            gates = self._project(ops.take(embeddings, ids, axis=0), first)
            new_states = []
            for cell, state in zip(self.decoder_cells, states):
                if new_states:
                    gates = self._project(new_states[-1].hidden, cell)
                new_states.append(recurrence.lstm_step(gates, state, cell.recurrent_kernel))
            logits = self._head(new_states[-1].hidden, mask)
            sampled = ops.argmax(ops.cast(logits, "float32") + noise, axis=-1)
            return ops.cast(sampled, true_ids.dtype), new_states, logits

        initial_logits = ops.zeros((batch, self.vocab_size), self.compute_dtype)
        _, _, logits = recurrence.scan(
            step, (inputs[0], states, initial_logits), (inputs, feed_sample, noise, dropout_mask)
        )
        return logits

    # ---------------------------------------------------------------- config

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        output = (batch, length, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output, (batch, self.units), (batch, self.units)]
        return output

    def get_config(self):
        config = {
            "units": self.units,
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
        }
        return {**super().get_config(), **config}


def _sequence_ends(mask, batch, length):
    """`(batch,)` int32: one past each sequence's last valid step."""
    if mask is None:
        return ops.full((batch,), length, "int32")
    valid = ops.cast(mask, "int32") * ops.arange(1, length + 1, dtype="int32")[None, :]
    return ops.max(valid, axis=1)


def _place_window(sequences, window, starts):
    """`sequences` `(time, batch, units)` with each example's `window`
    `(span, batch, units)` written from its step `starts[b]` on."""
    span, batch = ops.shape(window)[0], ops.shape(window)[1]
    offset = ops.arange(ops.shape(sequences)[0], dtype="int32")[:, None] - starts[None, :]
    inside = ops.logical_and(offset >= 0, offset < span)
    index = ops.clip(offset, 0, span - 1) * batch + ops.arange(batch, dtype="int32")[None, :]
    flat = ops.reshape(window, (-1, window.shape[-1]))
    placed = ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0), ops.shape(sequences))
    return ops.where(inside[:, :, None], placed, sequences)


def _gather_windows(sequence, starts, span):
    """Cuts windows of `span` steps from a time-major sequence.

    Args:
        sequence: `(time, batch, ...)`.
        starts: `(batch, windows)` first step of each window.

    Returns:
        `(span, batch * windows, ...)`, time-major, example-major on axis 1.
    """
    batch = ops.shape(sequence)[1]
    steps = ops.arange(span, dtype="int32")[:, None, None] + starts[None]
    flat_index = steps * batch + ops.arange(batch, dtype="int32")[None, :, None]
    flat = ops.reshape(sequence, (-1,) + tuple(sequence.shape[2:]))
    windows = ops.take(flat, ops.reshape(flat_index, (-1,)), axis=0)
    return ops.reshape(windows, (span, -1) + tuple(sequence.shape[2:]))


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected a "
            f"positive integer, got {value!r}."
        )


def _check_number(name, value, low, high, expected, high_open=False):
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and low <= value <= high
        and not (high_open and value == high)
    )
    if not ok:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected {expected}, got {value!r}."
        )
