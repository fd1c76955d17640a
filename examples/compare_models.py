"""The models of `compare.py` by name, which `compare_report.py` reads too
(it cannot import `compare.py`, whose flags would be required of it)."""

MODELS = (
    "lstm",
    "r-lstm",
    "lstm-full-bp",
    "lru",
    "r-lru",
    "lru-full-bp",
    "lru-rnn",
    "r-lru-rnn",
    "keras-lmu",
    "r-lmu-cell",
    "lmu-cell",
    "keras-tcn",
)
# What a user would pick instead of the package: Keras's LSTM and the peers.
OTHERS = ("lstm-full-bp", "keras-lmu", "keras-tcn")
# The package's layers and cell (the LRU with full backpropagation too).
OURS = tuple(model for model in MODELS if model not in OTHERS)
# The models with an auxiliary loss, and those with an LRU.
AUXILIARY = ("r-lstm", "r-lru", "r-lru-rnn", "r-lmu-cell")
LRU_MODELS = ("lru", "r-lru", "lru-full-bp", "lru-rnn", "r-lru-rnn")
