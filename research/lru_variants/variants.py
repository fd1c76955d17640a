r"""Two variants of the comparison's LRU that the package does not ship,
tried on the validation split at 196 steps: input dropout and two stacked
cells. Runs `examples.compare` with its `lru_cell` replaced, every flag of
it kept, and records the variant in the result's settings (`lru_dropout`,
`lru_layers`), which `examples.compare_report` names in its labels:

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
FLAGS = flags.FLAGS


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


def lru_cell(length: int, seed: int) -> keras.layers.Layer:
    """The comparison's cell (`compare.lru_options`) with the variant's."""
    options = compare.lru_options(length)
    if FLAGS.lru_dropout:
        first = InputDropoutLRUCell(compare.UNITS, seed=seed, dropout=FLAGS.lru_dropout, **options)
    else:
        first = LinearRecurrentUnitCell(compare.UNITS, seed=seed, **options)
    cells = [first] + [
        LinearRecurrentUnitCell(compare.UNITS, seed=seed + 100 * layer, **options)
        for layer in range(1, FLAGS.lru_layers)
    ]
    return cells[0] if len(cells) == 1 else keras.layers.StackedRNNCells(cells)


def run(model: str, length: int, seed: int) -> dict:
    result = compare_run(model, length, seed)
    result["settings"].update(lru_dropout=FLAGS.lru_dropout, lru_layers=FLAGS.lru_layers)
    return result


compare_run = compare.run
compare.lru_cell, compare.run = lru_cell, run

if __name__ == "__main__":
    app.run(compare.main)
