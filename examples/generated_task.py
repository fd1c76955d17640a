"""A generated long-sequence task whose answer lies far before the end.

Each sequence is `length` tokens of sparse noise: mostly the blank token 0,
with a random token from `1 .. vocab_size - 1` at a `noise` fraction of
steps. One of `num_classes` fixed motifs (`motif_length` tokens each, drawn
once from `task_seed`) is written at a random position in the first
`motif_region` fraction of the sequence; the label is the motif's class.
The last steps hold no information, so an LSTM whose supervised gradient
reaches only those steps cannot learn the task, while one trained to
remember what it has read can.
"""

import numpy as np


def make_motifs(num_classes, motif_length, vocab_size, task_seed=0):
    if num_classes > vocab_size - 1:
        raise ValueError(
            f"Received num_classes={num_classes}, but vocab_size={vocab_size} "
            "leaves only vocab_size - 1 non-blank tokens to start the motifs."
        )
    rng = np.random.default_rng(task_seed)
    motifs = rng.integers(1, vocab_size, size=(num_classes, motif_length))
    # Distinct first tokens: one token is enough to tell the class.
    motifs[:, 0] = rng.permutation(np.arange(1, vocab_size))[:num_classes]
    return motifs


def generate(
    num_examples,
    length=1000,
    num_classes=4,
    vocab_size=16,
    motif_length=8,
    motif_region=0.5,
    noise=0.1,
    seed=0,
    task_seed=0,
):
    """Returns `(tokens, labels)`: int32 `(num_examples, length)` and `(num_examples,)`."""
    motifs = make_motifs(num_classes, motif_length, vocab_size, task_seed)
    rng = np.random.default_rng(seed)
    tokens = np.where(
        rng.random((num_examples, length)) < noise,
        rng.integers(1, vocab_size, size=(num_examples, length)),
        0,
    ).astype("int32")
    labels = rng.integers(0, num_classes, size=num_examples).astype("int32")
    last_start = max(1, int(motif_region * length) - motif_length)
    starts = rng.integers(0, last_start, size=num_examples)
    for i, (label, start) in enumerate(zip(labels, starts)):
        tokens[i, start : start + motif_length] = motifs[label]
    return tokens, labels
