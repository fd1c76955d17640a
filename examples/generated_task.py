"""A generated long-sequence task whose clue lies before the last `gap` steps.

Each sequence of `length` tokens reads:

    noise ... noise  MARKER  clue clue clue  BLANK ... BLANK
                             `clue_length`   `gap` steps

- noise: at each step a noise token with probability `noise`, else BLANK;
- MARKER: one token announcing the clue;
- the clue: `clue_length` tokens drawn from the label's own group of
  `GROUP_SIZE` tokens;
- `gap` BLANK steps to the end.

The label can be read off any clue token, but only by a network that
carries it across the `gap` blank steps. An LSTM whose supervised gradient
reaches back fewer than `gap` steps sees only blanks and stays at chance
(1 / `NUM_CLASSES`). An r-LSTM learns to carry it: to reconstruct a window
that holds the clue, its decoder is told by the marker when the clue comes
but must take the clue's group from the main LSTM's state at the anchor.
"""

import numpy as np

NUM_CLASSES = 4
GROUP_SIZE = 4  # Clue tokens per class.
NOISE_TOKENS = 6
# Tokens: BLANK, MARKER, the clue groups, then the noise tokens.
BLANK, MARKER = 0, 1
FIRST_CLUE = 2
FIRST_NOISE = FIRST_CLUE + NUM_CLASSES * GROUP_SIZE
VOCAB_SIZE = FIRST_NOISE + NOISE_TOKENS


def generate(num_examples, length=300, clue_length=3, gap=30, noise=0.05, seed=0):
    """Returns `(tokens, labels)`: int32 `(num_examples, length)` in
    `[0, VOCAB_SIZE)` and `(num_examples,)` in `[0, NUM_CLASSES)`."""
    if clue_length + gap + 1 > length:
        raise ValueError(
            f"Received clue_length={clue_length} and gap={gap}: with the marker they "
            f"need {clue_length + gap + 1} steps, more than length={length}."
        )
    rng = np.random.default_rng(seed)
    tokens = np.where(
        rng.random((num_examples, length)) < noise,
        rng.integers(FIRST_NOISE, VOCAB_SIZE, size=(num_examples, length)),
        BLANK,
    )
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    clue = FIRST_CLUE + labels[:, None] * GROUP_SIZE
    clue = clue + rng.integers(0, GROUP_SIZE, size=(num_examples, clue_length))
    end = length - gap
    tokens[:, end - clue_length - 1] = MARKER
    tokens[:, end - clue_length : end] = clue
    tokens[:, end:] = BLANK
    return tokens.astype("int32"), labels.astype("int32")
