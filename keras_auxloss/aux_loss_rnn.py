"""`AuxLossRNN`: any Keras recurrent cell trained with truncated
backpropagation and an auxiliary reconstruction or prediction loss at
random anchors. Its `call` is the method in three steps: where the windows
lie (`windows.py`), the truncated run (`truncation.py`), the auxiliary loss
(`auxiliary.py`), added with `add_loss`."""

import keras
from keras import ops
from keras.src.utils import tracking

from keras_auxloss import arguments, kernels, streams, truncation, windows
from keras_auxloss import dropout as cell_dropout
from keras_auxloss.auxiliary import AuxiliaryDecoder, decoder_cells
from keras_auxloss.cell_checks import check_cell
from keras_auxloss.cells import MainNetwork, output_size, runner_for, state_sizes
from keras_auxloss.documentation import documented
from keras_auxloss.inputs import feature_size, standardize_inputs, standardize_mask
from keras_auxloss.loss_tracker import loss_tracker, metric_name, running_step
from keras_auxloss.seeds import draws_seed

# The seed of the anchors drawn on held-out data in `evaluate`.
HELD_OUT_SEED = windows.HELD_OUT_SEED

CELL_DOC = (
    "A Keras RNN cell, as `keras.layers.RNN` takes: `LSTMCell`, `GRUCell`, "
    "`SimpleRNNCell`, or a cell of your own with `state_size` (an int or a list of ints), "
    "optionally `output_size`, and `call(inputs, states)` returning `(output, new_states)`. "
    "A cell's `dropout` and `recurrent_dropout` (Keras's `DropoutRNNCell`) apply as in "
    "`keras.layers.RNN`: one mask per sequence and call, in training only, the same in "
    "every window. Keras's `LSTMCell` runs on a faster path with the same values (with "
    "input dropout too)."
)


@keras.saving.register_keras_serializable(package="keras_auxloss")
@documented("cell", CELL_DOC)
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
    {arguments}

    Call arguments:
    {call_arguments}

    Output shape:
        `(batch, output_size)`, or `(batch, time, output_size)` with
        `return_sequences=True`; with `return_state=True`, a list of the
        output and each final state tensor `(batch, size)`.

    Masking:
    {masking}

    Example:

    >>> layer = AuxLossRNN(keras.layers.GRUCell(32), vocab_size=256,
    ...                    aux_length=20, bptt=10)
    >>> tokens = np.random.randint(0, 256, size=(4, 100))
    >>> tuple(layer(tokens).shape)
    (4, 32)

    Reference:
        - Trinh, Dai, Luong and Le, "Learning Longer-term Dependencies in
          RNNs with Auxiliary Losses", ICML 2018.
          https://arxiv.org/abs/1803.00144
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
        zero_output_for_mask=False,
        aux_sampled_softmax=None,
        go_backwards=False,
        unroll=False,
        use_cudnn="auto",
        **kwargs,
    ):
        # Each argument received (`locals()`) checked as the table says
        # (`arguments.ARGUMENTS`), in its order, before the base layer is made.
        arguments.check_all(locals())
        super().__init__(**kwargs)
        check_cell(cell)
        self.aux_loss = aux_loss
        self.num_anchors = num_anchors
        self.aux_length = aux_length
        self.bptt = bptt
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.aux_units = output_size(cell) if aux_units is None else aux_units
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
        self.stateful = stateful
        self.zero_output_for_mask = zero_output_for_mask
        self.aux_sampled_softmax = aux_sampled_softmax
        self.go_backwards = go_backwards
        self.unroll = unroll
        self.use_cudnn = use_cudnn
        self._check_combination(output_size(cell))
        self.supports_masking = True
        self.states, self._fixed_window_starts = None, None  # The second: keras_auxloss.testing.
        self._make_layers(cell)

    def _check_combination(self, units):
        arguments.check_combination(
            units,
            aux_loss=self.aux_loss,
            aux_length=self.aux_length,
            aux_units=self.aux_units,
            scheduled_sampling=self.scheduled_sampling,
            vocab_size=self.vocab_size,
            aux_sampled_softmax=self.aux_sampled_softmax,
            mask_zero=self.mask_zero,
        )

    def _make_layers(self, cell):
        """The embedding, the main cell and the auxiliary decoder, in the
        order of the weights (and of the optimizer's variables in saved
        files) of version 0.1.0."""
        self.seed_generator = None
        if self.aux_loss is not None:
            self.seed_generator = keras.random.SeedGenerator(
                draws_seed(self.seed, self.go_backwards)
            )
        self.embedding = None
        if self.vocab_size is not None:
            self.embedding = keras.layers.Embedding(
                self.vocab_size, self.embedding_dim, dtype=self.dtype_policy, name="embedding"
            )
        self.cell = cell
        self.decoder_cells = []
        if self.aux_loss is not None:
            self.decoder_cells = decoder_cells(
                self.cell, self.aux_loss, self.aux_units, self.aux_layers, self.dtype_policy
            )
            self.head_hidden = keras.layers.Dense(
                self.aux_hidden, activation="relu", dtype=self.dtype_policy, name="head_hidden"
            )
            self.aux_loss_tracker = loss_tracker(metric_name(self))

    @property
    def units(self):
        """The size of the main network's output."""
        return output_size(self.cell)

    @property
    def aux_loss_metric_name(self):
        """The name under which `fit` and `evaluate` log the auxiliary loss
        (`val_` prefixed for `fit`'s validation): `<name>_aux_loss` for a
        layer given a name; for the unnamed ones of a model, `aux_loss`,
        `aux_loss_1`, ... in the order of the model's layers (set when the
        model first trains or evaluates; `aux_loss` until then)."""
        if self.aux_loss is None:
            return metric_name(self)
        return self.aux_loss_tracker.name

    @property
    def kernels_used(self):
        """Which kernel ran each run of the layer when it last ran (traced,
        on TensorFlow and JAX): a dict from the run (`"inference"`,
        `"capture pass"`, `"supervised window"`, `"anchor windows"`,
        `"decoder layer 0"`, ...) to `"cudnn"`, `"onednn"` (PyTorch's CPU
        kernel), `"lru"` (`LinearRecurrentUnitCell`'s) or `"loop"`; empty
        before the layer first runs. The layer
        also logs it (`absl.logging`, at INFO) the first time it sees each."""
        return kernels.used(self._runners()) if self.built else {}

    def _runners(self):
        return [self.main_network.runner] + (self.decoder.runners if self.decoder else [])

    @property
    def _shortest_length(self):
        return windows.shortest_length(self.bptt, self.aux_loss, self.aux_length)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        input_dim = self._input_dim(input_shape)
        windows.check_length(
            input_shape[1], self.bptt, self.aux_loss, self.aux_length, self.num_anchors
        )
        if self.embedding is not None:
            self.embedding.build(input_shape)
        if not self.cell.built:
            self.cell.build((None, input_dim))
        runner = runner_for(self.cell, self.compute_dtype, self.use_cudnn)
        self.main_network = MainNetwork(
            runner, self.embedding, self.compute_dtype, self.zero_output_for_mask
        )
        if self.stateful:
            self._create_state_variables(input_shape[0])
        self.decoder = None if self.aux_loss is None else self._build_decoder(input_dim)
        if not kernels.compiles_with_xla(self._runners()):
            self.supports_jit = False

    def _input_dim(self, input_shape):
        return feature_size(
            input_shape,
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            owner=type(self).__name__,
        )

    def _build_decoder(self, input_dim):
        decoder_input_dim = input_dim if self.aux_loss == "reconstruct" else self.units
        for i, cell in enumerate(self.decoder_cells):
            cell.build((None, decoder_input_dim if i == 0 else output_size(cell)))
        self.head_hidden.build((None, output_size(self.decoder_cells[-1])))
        self.head_output = keras.layers.Dense(
            self.vocab_size or input_dim, dtype=self.dtype_policy, name="head_output"
        )
        self.head_output.build((None, self.aux_hidden))
        return AuxiliaryDecoder(
            self.aux_loss,
            [runner_for(cell, self.compute_dtype, self.use_cudnn) for cell in self.decoder_cells],
            self.head_hidden,
            self.head_output,
            aux_length=self.aux_length,
            num_anchors=self.num_anchors,
            vocab_size=self.vocab_size,
            scheduled_sampling=self.scheduled_sampling,
            sampled_softmax=self.aux_sampled_softmax,
            seed_generator=self.seed_generator,
        )

    def call(self, inputs, training=False, mask=None, initial_state=None):
        inputs, mask = self._standardize(inputs, mask)
        if self.go_backwards:
            # Read from the last step to the first: from here on, every
            # step, window and output is in the order read, as in Keras.
            inputs = ops.flip(inputs, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        initial = streams.initial_state(
            inputs, initial_state, self.states, sizes=state_sizes(self.cell),
            dtype=self.cell.compute_dtype, owner=type(self).__name__, name=self.name,
        )  # fmt: skip
        model, step = running_step()
        # The auxiliary loss is measured in training, and on held-out data
        # in `evaluate`; `predict` and exported models run the main network alone.
        if not training and (self.aux_loss is None or step != "test_step"):
            run = self.main_network.run_whole(
                _time_major(inputs), initial, mask=_time_major(mask),
                return_sequences=self.return_sequences, name="inference",
            )  # fmt: skip
            kernels.log_new(f"{type(self).__name__} {self.name!r}", self._runners())
            return self._outputs(run.output, run.state, run.sequences)
        length = ops.shape(inputs)[1]
        # Read before a short batch is padded: its own last step, not the padding's.
        last_step_valid = None if mask is None else mask[:, -1]
        inputs, mask = windows.pad_to_fit(inputs, mask, self._shortest_length)
        sequence, steps_mask = _time_major(inputs), _time_major(mask)

        # 1. Where the windows lie: the supervised window and the anchors' windows.
        located = self._locate_windows(inputs, mask, training)
        # The cell's dropout masks, drawn once: every run of the call reads them.
        dropout = self._dropout_masks(inputs) if training else None
        # 2. The truncated run: each window from its start state, cut from the gradient.
        run = truncation.truncated_run(
            self.main_network, sequence, steps_mask, initial, located,
            bptt=self.bptt, return_sequences=self.return_sequences, dropout=dropout,
        )  # fmt: skip
        # 3. The auxiliary loss at the anchors, added to the model's loss.
        if self.aux_loss is not None:
            loss, tokens = self.decoder.loss(
                self.main_network, sequence, steps_mask, located, run.window_start_states,
                training=training, dropout=self.aux_dropout, cell_dropout=dropout,
            )  # fmt: skip
            self.add_loss(self.aux_weight * loss)
            self.aux_loss_tracker.name = metric_name(self, model)
            self.aux_loss_tracker.update_state(loss, sample_weight=tokens)
        kernels.log_new(f"{type(self).__name__} {self.name!r}", self._runners())
        output = run.output
        if self.zero_output_for_mask and last_step_valid is not None:
            # The run's output is each sequence's last valid step's; Keras
            # outputs zeros where the last step is masked.
            output = ops.where(last_step_valid[:, None], output, ops.zeros_like(output))
        return self._outputs(output, run.state, run.sequences, length)

    def _standardize(self, inputs, mask):
        owner = type(self).__name__
        inputs = standardize_inputs(
            inputs,
            vocab_size=self.vocab_size,
            dtype=self.compute_dtype,
            validate=self.validate_inputs,
            owner=owner,
        )
        return inputs, standardize_mask(mask, inputs, mask_zero=self.mask_zero, owner=owner)

    def _dropout_masks(self, inputs):
        """The main cell's dropout masks for a training batch, or `None`."""
        input_dim = self._input_dim(tuple(inputs.shape))
        batch = ops.shape(inputs)[0]
        return cell_dropout.draw(self.cell, batch, input_dim, self.cell.compute_dtype)

    def _locate_windows(self, inputs, mask, training):
        return windows.locate(
            mask,
            ops.shape(inputs)[0],
            ops.shape(inputs)[1],
            bptt=self.bptt,
            aux_loss=self.aux_loss,
            aux_length=self.aux_length,
            num_anchors=self.num_anchors,
            # Held out: the same windows at every evaluation, so that they compare.
            seed=self.seed_generator if training else HELD_OUT_SEED,
            fixed=self._fixed_window_starts,
        )

    def _outputs(self, output, state, sequences, length=None):
        """The layer's outputs, in its compute dtype, the state carried to
        the next batch if stateful; `length` cuts off the steps that padded
        a short batch."""
        if self.stateful:
            truncation.carry(self.states, state)
        if sequences is not None:
            output = ops.moveaxis(sequences, 0, 1)
            output = output if length is None else output[:, :length]
        output = ops.cast(output, self.compute_dtype)
        if self.return_state:
            return [output, *(ops.cast(s, self.compute_dtype) for s in state)]
        return output

    # The carried state of a stateful layer, held as `keras.layers.RNN`
    # holds its own (`streams.py`).

    @tracking.no_automatic_dependency_tracking
    def _create_state_variables(self, batch):
        self.states = streams.state_variables(batch, state_sizes(self.cell), type(self).__name__)

    @property
    def variables(self):
        return super().variables + list(self.states or [])

    def reset_state(self, states=None):
        """Zeroes the carried state of a stateful layer, or sets it to
        `states` (one array per state tensor), as `keras.layers.LSTM` does."""
        streams.reset(self.states, states, stateful=self.stateful, owner=type(self).__name__)

    def reset_states(self, states=None):
        """`reset_state`, under the name of Keras's older API."""
        self.reset_state(states)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        streams.save(store, self.states)

    def load_own_variables(self, store):
        own, saved = streams.split_store(store, self.states)
        super().load_own_variables(own)
        for variable, value in zip(self.states or [], saved):
            variable.assign(value)

    def compute_mask(self, inputs, mask=None):
        """The output's mask, with `return_sequences`: the input mask and,
        with `mask_zero`, the non-zero token ids."""
        mask = standardize_mask(mask, inputs, mask_zero=self.mask_zero, owner=type(self).__name__)
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(state_sizes(self.cell))
        return output_mask

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        output = (batch, length, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return (output, *((batch, size) for size in state_sizes(self.cell)))
        return output

    def get_config(self):
        cell = keras.saving.serialize_keras_object(self.cell)
        options = {name: getattr(self, name) for name in arguments.NAMES}
        return {**super().get_config(), "cell": cell, **options}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


def _time_major(tensor):
    """`(time, batch, ...)` from `(batch, time, ...)`; `None` stays `None`."""
    return None if tensor is None else ops.moveaxis(tensor, 1, 0)
