"""The package's long-memory configuration: its `LinearRecurrentUnitCell`
read by a small tanh RNN stacked on it, as `docs/results.md` chose it on
the validation split at 196 steps ("The LRU read by a tanh RNN").

The LRU's eigenvalues start on a leaky Fourier basis (every |lambda| the
same, timescales up to twice the sequence's length) and stay there
(`train_eigenvalues=False`); its input and output maps train, and so does
the `SimpleRNNCell` that reads its output at every step. `AuxLossRNN` runs
the stack as one cell, truncated, and its decoder starts from the stack's
full state. `compare.py` stacks the LRU its `--lru_*` flags describe
(`read_by_rnn`); the demo and `train.py` (`--model=r-lru-rnn`) the chosen
one (`lru_reader_cells`).
"""

import keras

from keras_auxloss import LinearRecurrentUnitCell

# The chosen LRU: compare.py's --lru_eigenvalue_init=fourier
# --lru_train_dynamics=false --lru_state_dim=128 --lru_timescales=2.
STATE_DIM = 128
TIMESCALES = 2
# The reader's seed is the LRU's plus this, so that the two draw apart.
READER_SEED_OFFSET = 1000


def read_by_rnn(lru_cell, units, seed):
    """`StackedRNNCells([lru_cell, SimpleRNNCell(units)])`, the reader
    seeded with `seed + READER_SEED_OFFSET`."""
    reader = keras.layers.SimpleRNNCell(units, seed=seed + READER_SEED_OFFSET)
    return keras.layers.StackedRNNCells([lru_cell, reader])


def lru_reader_cells(units, length, seed):
    """The chosen configuration for sequences of `length` steps: an LRU of
    `units` outputs and `STATE_DIM` complex states, its Fourier basis fixed
    with timescales up to `TIMESCALES` lengths, read by a tanh RNN of
    `units`; `seed` seeds both."""
    lru = LinearRecurrentUnitCell(
        units,
        state_dim=STATE_DIM,
        max_timescale=TIMESCALES * length,
        eigenvalue_init="fourier",
        train_eigenvalues=False,
        seed=seed,
    )
    return read_by_rnn(lru, units, seed)
