r"""Variants of the comparison's LRU that the package does not ship, tried
on the validation split at 196 steps: input dropout, stacked cells, a
nonlinear recurrent reader stacked on the LRU (`--lru_reader`: Keras's
`SimpleRNNCell` or `GRUCell`, or `state`, a tanh cell reading the LRU's
complex state itself), its inputs through a low-rank projection
(`--lru_input_rank`) and its eigenvalues as a leaky Fourier basis
(`--lru_fourier`). Runs `examples.compare` with its `lru_cell` replaced,
every flag of it kept, and records the variant in the result's settings
(`lru_dropout`, `lru_layers`, `lru_reader`, `lru_input_rank`,
`lru_fourier`), which `examples.compare_report` names in its labels:

    python -m research.lru_variants.variants --model=r-lru --lru_dropout=0.1 \
        --lru_r_min=0.99 --lru_state_dim=128 --epochs=10 --evaluate_on=validation \
        --output=runs/validation/r-lru-dropout01.json
"""

import keras
from absl import app, flags
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from examples import compare
from keras_auxloss import LinearRecurrentUnitCell

flags.DEFINE_float("lru_dropout", 0.0, "The main LRU's input dropout (a mask a sequence).")
flags.DEFINE_integer("lru_layers", 1, "LRU cells stacked (StackedRNNCells).", lower_bound=1)
flags.DEFINE_enum(
    "lru_reader",
    "none",
    ["none", "simple", "gru", "state"],
    "A nonlinear recurrent cell stacked on the LRU, reading its outputs.",
)
flags.DEFINE_integer(
    "lru_input_rank", None, "The LRU's inputs projected to this many features first.", lower_bound=1
)
flags.DEFINE_bool(
    "lru_fourier",
    False,
    'The LRU\'s eigenvalue_init="fourier", as --lru_eigenvalue_init=fourier but with '
    "--lru_r_min and --lru_max_phase accepted and unread (as the runs were made).",
)
FLAGS = flags.FLAGS


@flags.multi_flags_validator(
    ["lru_reader", "lru_input_rank", "lru_dropout"],
    message="The first cell takes one variant: --lru_reader=state, --lru_input_rank or "
    "--lru_dropout.",
)
def _one_first_cell(values):
    given = [values["lru_reader"] == "state", values["lru_input_rank"], values["lru_dropout"]]
    return sum(map(bool, given)) <= 1


@keras.saving.register_keras_serializable(package="research")
class LowRankInputLRUCell(LinearRecurrentUnitCell):
    """`LinearRecurrentUnitCell` whose state reads `rank` features of its
    input, `B = encoder @ B_low` (the cell's own `B` unused)."""

    def __init__(self, *args, rank=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.rank = rank

    def get_config(self):
        return {**super().get_config(), "rank": self.rank}

    def build(self, input_shape):
        super().build(input_shape)
        size = self.state_dim or self.units
        glorot = keras.initializers.GlorotUniform
        self.encoder = self._weight("encoder", (input_shape[-1], self.rank), glorot(self._seed(20)))
        b_std = (2 * self.rank) ** -0.5
        self.B_low_re = self._weight("B_low_re", (self.rank, size), self._normal(b_std, 21))
        self.B_low_im = self._weight("B_low_im", (self.rank, size), self._normal(b_std, 22))

    def inputs_to_state(self, u, gamma):
        v = keras.ops.matmul(u, self._read(self.encoder))
        return gamma * keras.ops.matmul(v, self._read(self.B_low_re)), gamma * keras.ops.matmul(
            v, self._read(self.B_low_im)
        )


@keras.saving.register_keras_serializable(package="research")
class InputDropoutLRUCell(DropoutRNNCell, LinearRecurrentUnitCell):
    """`LinearRecurrentUnitCell` with Keras's input dropout: one mask a
    sequence, drawn by the layer that runs the cell (Keras's `RNN`, the
    package's `AuxLossRNN`), applied to each step's input in training."""

    def __init__(self, *args, dropout=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropout, self.recurrent_dropout = dropout, 0.0
        self.seed_generator = keras.random.SeedGenerator(kwargs.get("seed"))

    def call(self, inputs, states, training=False):
        mask = self.get_dropout_mask(inputs)
        if training and mask is not None:
            inputs = inputs * mask
        return super().call(inputs, states, training)


@keras.saving.register_keras_serializable(package="research")
class StateReaderLRUCell(LinearRecurrentUnitCell):
    """The LRU's linear recurrence read by a tanh recurrent cell from its
    state and input: `h_t = tanh([Re x_t, Im x_t, u_t] @ W + h_{t-1} @ U + b)`;
    the state `[Re x, Im x, h]`, the output `h`."""

    @property
    def state_size(self):
        size = self.state_dim or self.units
        return [size, size, self.units]

    def build(self, input_shape):
        input_dim = input_shape[-1]
        size = self.state_dim or self.units
        self._build_eigenvalues(size)
        b_std = (2 * input_dim) ** -0.5
        self.B_re = self._weight("B_re", (input_dim, size), self._normal(b_std, 2))
        self.B_im = self._weight("B_im", (input_dim, size), self._normal(b_std, 3))
        glorot = keras.initializers.GlorotUniform
        self.reader_kernel = self._weight(
            "reader_kernel", (2 * size + input_dim, self.units), glorot(self._seed(30))
        )
        self.reader_recurrent = self._weight(
            "reader_recurrent",
            (self.units, self.units),
            keras.initializers.Orthogonal(seed=self._seed(31)),
        )
        self.reader_bias = self._weight("reader_bias", (self.units,), "zeros")

    def call(self, inputs, states, training=False):
        ops = keras.ops
        u = ops.cast(inputs, "float32")
        real, imaginary, hidden = (ops.cast(s, "float32") for s in states)
        lambda_re, lambda_im, gamma = self.eigenvalues()
        real, imaginary = self.recur(
            (lambda_re, lambda_im), (real, imaginary), self.inputs_to_state(u, gamma)
        )
        read = ops.concatenate([real, imaginary, u], axis=-1)
        hidden = ops.tanh(
            ops.matmul(read, self.reader_kernel.value)
            + ops.matmul(hidden, self.reader_recurrent.value)
            + self.reader_bias.value
        )
        return hidden, [real, imaginary, hidden]


def lru_cell(length: int, seed: int) -> keras.layers.Layer:
    """The comparison's cell (`compare.lru_options`) with the variant's."""
    options = compare.lru_options(length)
    if FLAGS.lru_fourier:
        options.update(eigenvalue_init="fourier", r_min=None, max_phase=None)
    if FLAGS.lru_reader == "state":
        first = StateReaderLRUCell(compare.UNITS, seed=seed, **options)
    elif FLAGS.lru_input_rank:
        first = LowRankInputLRUCell(compare.UNITS, seed=seed, rank=FLAGS.lru_input_rank, **options)
    elif FLAGS.lru_dropout:
        first = InputDropoutLRUCell(compare.UNITS, seed=seed, dropout=FLAGS.lru_dropout, **options)
    else:
        first = LinearRecurrentUnitCell(compare.UNITS, seed=seed, **options)
    cells = [first] + [
        LinearRecurrentUnitCell(compare.UNITS, seed=seed + 100 * layer, **options)
        for layer in range(1, FLAGS.lru_layers)
    ]
    if FLAGS.lru_reader == "simple":
        cells.append(keras.layers.SimpleRNNCell(compare.UNITS, seed=seed + 1000))
    elif FLAGS.lru_reader == "gru":
        cells.append(keras.layers.GRUCell(compare.UNITS, seed=seed + 1000))
    return cells[0] if len(cells) == 1 else keras.layers.StackedRNNCells(cells)


def run(model: str, length: int, seed: int) -> dict:
    result = compare_run(model, length, seed)
    result["settings"].update(lru_dropout=FLAGS.lru_dropout, lru_layers=FLAGS.lru_layers)
    if FLAGS.lru_fourier:
        result["settings"].update(lru_fourier=True)
    if FLAGS.lru_input_rank:
        result["settings"].update(lru_input_rank=FLAGS.lru_input_rank)
    if FLAGS.lru_reader != "none":
        result["settings"].update(lru_reader=FLAGS.lru_reader)
    return result


compare_run = compare.run
compare.lru_cell, compare.run = lru_cell, run

if __name__ == "__main__":
    app.run(compare.main)
