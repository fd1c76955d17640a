"""The auxiliary head's cross entropy over a sample of the vocabulary, for
large vocabularies (`aux_sampled_softmax`).

The full softmax scores every token of the vocabulary at every predicted
position: with 50,000 words and 600 positions of 32 sequences, about a
billion logits a step. The sampled softmax (Jean et al., 2015) scores each
position's target and `num_sampled` negative tokens, drawn uniformly
without replacement once per call and shared by every position; a negative
that is a position's own target is left out of that position's candidates
("accidental hits"). With uniform sampling the usual correction `-log Q`
is the same for every candidate, so it cancels in the softmax over them.
The loss estimates the full cross entropy from below, and equals it when
every token is sampled.
"""

import keras
from keras import ops


def sampled_cross_entropy(hidden, kernel, bias, targets, num_sampled, seed):
    """Per-position cross entropy `(...)` of the targets against themselves
    and `num_sampled` negatives, in float32.

    Args:
        hidden: `(..., features)`, what the head's output layer reads.
        kernel: `(features, vocab_size)` and `bias` `(vocab_size,)`: the
            output layer's weights.
        targets: `(...)` integer token ids.
        num_sampled: Negatives drawn, at most `vocab_size`.
        seed: A `keras.random.SeedGenerator` or an int.
    """
    vocab_size = kernel.shape[-1]
    # Uniform without replacement: the `num_sampled` largest of uniform keys.
    keys = keras.random.uniform((vocab_size,), seed=seed)
    _, negatives = ops.top_k(keys, num_sampled, sorted=False)
    hidden = ops.cast(hidden, "float32")
    kernel, bias = ops.cast(kernel, "float32"), ops.cast(bias, "float32")
    target_rows = ops.take(ops.transpose(kernel), targets, axis=0)  # (..., features)
    true_logits = ops.sum(hidden * target_rows, axis=-1) + ops.take(bias, targets, axis=0)
    negative_logits = ops.matmul(hidden, ops.take(kernel, negatives, axis=1))
    negative_logits = negative_logits + ops.take(bias, negatives, axis=0)
    hit = ops.equal(ops.expand_dims(targets, -1), ops.cast(negatives, targets.dtype))
    negative_logits = ops.where(hit, ops.full_like(negative_logits, -1e9), negative_logits)
    logits = ops.concatenate([ops.expand_dims(true_logits, -1), negative_logits], axis=-1)
    return ops.logsumexp(logits, axis=-1) - true_logits
