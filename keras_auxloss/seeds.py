"""The seeds of a layer's random streams, each from the layer's `seed`:
its draws (anchors, the head's dropout, scheduled sampling), those of the
backward copy that `keras.layers.Bidirectional` makes, and its cell's
dropout."""

import numbers

# Offsets from a layer's `seed` to the seeds of its other random streams:
# far apart, so that neighbouring layers seeded 1, 2, 3, ... share none.
BACKWARD_SEED_OFFSET = 1_000_003
CELL_SEED_OFFSET = 2_000_003


def draws_seed(seed, go_backwards):
    """The seed of a layer's random draws (anchors, the head's dropout,
    scheduled sampling): `seed`, or `seed + BACKWARD_SEED_OFFSET` for a
    layer that reads backward, so that the backward copy
    `keras.layers.Bidirectional` makes from the forward layer's
    configuration draws anchors of its own."""
    if seed is None or not go_backwards:
        return seed
    return seed + BACKWARD_SEED_OFFSET


def cell_seed(seed, cell_arguments):
    """The seed of the cell's dropout: the layer's `seed` plus
    `CELL_SEED_OFFSET` where the cell drops anything, else `None`, as
    before dropout was taken (an unseeded cell draws its default seed from
    Python's generator, which the weights' initial values then follow:
    seeding it would change them)."""
    drops = any(cell_arguments.get(name) for name in ("dropout", "recurrent_dropout"))
    if not drops or not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        return None  # A bad seed is refused with the layer's own arguments.
    return seed + CELL_SEED_OFFSET
