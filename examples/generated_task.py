"""A generated long-sequence task whose evidence ends `gap` steps early.

Each sequence of `length` tokens reads

    c c c c c ... c c c  BLANK BLANK ... BLANK
    `length - gap` tokens   `gap` steps

where every `c` is drawn at random from the label's own group of
`GROUP_SIZE` tokens, and BLANK (token 0) carries no information. The label
can be read off any token before the gap, but only by a network that carries
it across the `gap` blank steps to the end.

An LSTM whose supervised gradient reaches back `bptt < gap` steps sees only
blanks in its gradient window: it stays at chance (1 / `NUM_CLASSES`). An
r-LSTM truncated the same way learns the task, because reconstructing the
windows that end inside the gap makes its state carry what it read before
the gap. `make demo` shows both.
"""

import numpy as np

NUM_CLASSES = 4
GROUP_SIZE = 4  # Tokens per class.
BLANK = 0
VOCAB_SIZE = 1 + NUM_CLASSES * GROUP_SIZE  # BLANK, then the groups.
LENGTH = 300
GAP = 30


def generate(num_examples, length=LENGTH, gap=GAP, seed=0):
    """Returns `(tokens, labels)`: int32 `(num_examples, length)` in
    `[0, VOCAB_SIZE)` and `(num_examples,)` in `[0, NUM_CLASSES)`."""
    if not 0 <= gap < length:
        raise ValueError(
            f"Received gap={gap} with length={length}: expected 0 <= gap < length, so "
            "that some evidence comes before the gap."
        )
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    tokens = 1 + labels[:, None] * GROUP_SIZE + rng.integers(0, GROUP_SIZE, (num_examples, length))
    tokens[:, length - gap :] = BLANK
    return tokens.astype("int32"), labels.astype("int32")
