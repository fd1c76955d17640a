"""Two forms of the LRU's linear recurrence `x_t = lambda * x_{t-1} + b_t`
(complex, diagonal `lambda`, from `x_{-1} = 0`), for `lru_kernel.py
--recurrence`: each takes `lam` `(2, state)` (real, imaginary) and `b`
`(time, 2, batch, state)` and returns every `x_t`, `(time, 2, batch, state)`.
The kernel (`keras_auxloss/linear_recurrent_unit_kernel.py`) steps it elementwise.
"""

from keras import ops

from keras_auxloss.backends import current

CHUNK = 16


def times(a, x):
    """`a * x`, complex, the real and imaginary parts on axis 0 (broadcast)."""
    return ops.stack([a[0] * x[0] - a[1] * x[1], a[0] * x[1] + a[1] * x[0]])


def stepped(lam, b):
    """One elementwise step a time step (`current.scan`)."""
    return current.scan(lambda x, b_t: times(lam[:, None], x) + b_t, ops.zeros_like(b[0]), b)


def chunked(lam, b):
    """Within chunks of `CHUNK` steps, products with a triangle of powers of
    lambda; across chunks, one elementwise step a chunk."""
    steps = b.shape[0]
    chunks = steps // CHUNK
    b = ops.reshape(b, (chunks, CHUNK, *b.shape[1:]))
    modulus = ops.sqrt(lam[0] ** 2 + lam[1] ** 2)
    phase = ops.arctan2(lam[1], lam[0])
    k = ops.cast(ops.arange(CHUNK + 1), "float32")[:, None]
    powers = ops.stack([modulus**k * ops.cos(k * phase), modulus**k * ops.sin(k * phase)], 1)
    t = ops.arange(CHUNK)
    lag = t[:, None] - t[None, :]
    w = ops.take(powers, ops.maximum(lag, 0), axis=0)
    w = w * ops.cast(lag >= 0, "float32")[:, :, None, None]  # (t, s, 2, state)

    def product(wi, bi):
        return ops.einsum("tsn,ksbn->ktbn", w[:, :, wi], b[:, :, bi])

    within = ops.stack([product(0, 0) - product(1, 1), product(0, 1) + product(1, 0)], 2)
    last = within[:, -1]  # (chunks, 2, batch, state)
    step = powers[CHUNK][:, None]
    after = current.scan(lambda h, end: times(step, h) + end, ops.zeros_like(last[0]), last)
    before = ops.concatenate([ops.zeros_like(after[:1]), after[:-1]], 0)[:, None]
    carried = powers[1:][None, :, :, None]  # (1, t, 2, 1, state)
    h = ops.moveaxis(before, 2, 0)  # (2, chunks, 1, batch, state)
    add = ops.moveaxis(times(ops.moveaxis(carried, 2, 0), h), 0, 2)
    return ops.reshape(within + add, (steps, *b.shape[2:]))


FORMS = {"stepped": stepped, "chunked": chunked}
