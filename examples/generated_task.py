"""A generated long-sequence task whose clue lies before the last `gap` steps.

Each sequence of `length` tokens has three parts:

- noise: at each step a random token from `1 .. vocab_size - 1` with
  probability `noise`, else the blank token 0;
- the clue: `clue_length` tokens drawn from the label's own group of
  tokens (the `vocab_size - 1` non-blank tokens split into `num_classes`
  groups);
- `gap` blank steps to the end.

The label can be read off any clue token, but only by a network that carries
it across the `gap` blank steps. An LSTM whose supervised gradient reaches
back fewer than `gap` steps sees blanks only and stays at chance (1 /
`num_classes`); an LSTM trained to reconstruct what it has read learns to
carry the clue.
"""

import numpy as np


def generate(
    num_examples,
    length=600,
    num_classes=4,
    vocab_size=17,
    clue_length=40,
    gap=100,
    noise=0.3,
    seed=0,
):
    """Returns `(tokens, labels)`: int32 `(num_examples, length)` and `(num_examples,)`."""
    group = (vocab_size - 1) // num_classes
    if group < 1:
        raise ValueError(
            f"Received num_classes={num_classes} and vocab_size={vocab_size}: each class "
            "needs at least one non-blank token, so vocab_size must exceed num_classes."
        )
    if clue_length + gap > length:
        raise ValueError(
            f"Received clue_length={clue_length} and gap={gap}, which do not fit in "
            f"length={length}."
        )
    rng = np.random.default_rng(seed)
    tokens = np.where(
        rng.random((num_examples, length)) < noise,
        rng.integers(1, vocab_size, size=(num_examples, length)),
        0,
    )
    labels = rng.integers(0, num_classes, size=num_examples)
    clue = 1 + labels[:, None] * group + rng.integers(0, group, size=(num_examples, clue_length))
    end = length - gap
    tokens[:, end - clue_length : end] = clue
    tokens[:, end:] = 0
    return tokens.astype("int32"), labels.astype("int32")
