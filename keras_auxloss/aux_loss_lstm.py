"""`AuxLossLSTM`: an LSTM trained with truncated backpropagation and an
auxiliary reconstruction or prediction loss at random anchors."""

import keras

from keras_auxloss.keras_cell_layer import KerasCellLayer


@keras.saving.register_keras_serializable(package="keras_auxloss")
class AuxLossLSTM(KerasCellLayer):
    """LSTM with truncated backpropagation and an unsupervised auxiliary loss.

    A main LSTM reads the whole sequence. In training, the supervised
    gradient flows back through only the last `bptt` steps, and at
    `num_anchors` positions drawn at random per example an auxiliary decoder
    either reconstructs the `aux_length` tokens that end at the anchor
    (`aux_loss="reconstruct"`, the paper's r-LSTM) or predicts the
    `aux_length` tokens that follow it (`aux_loss="predict"`, p-LSTM). The
    mean per-token auxiliary loss, times `aux_weight`, is added with
    `add_loss`, so plain `model.fit` trains both; its unweighted value is
    logged as the metric `aux_loss`.

    Truncation is done as in the paper: the layer runs the whole sequence
    once outside the gradient, keeping the recurrent state (h, c) where each
    window starts, and runs every window again from that state, cut with
    `stop_gradient`. The backpropagated graph is therefore about
    `bptt + num_anchors * aux_length` steps long whatever the sequence
    length, and token inputs are embedded step by step, so no
    `(batch, time, embedding)` tensor is built for the whole sequence.
    Truncation changes gradients, never values: the training output equals
    the inference output for the same weights.

    Every differentiable path (the supervised window, each anchor's window,
    the reconstruction decoder's inputs) reads the embedding as
    `keras.layers.Embedding` does, one lookup per window, so the embedding's
    gradient is a `tf.IndexedSlices` with one slice per token read: the layer
    trains step for step like the same model built from `Embedding`, `LSTM`
    (state cut with `stop_gradient`) and `Dense` layers.

    Outside training the layer is exactly its main LSTM run over the whole
    sequence: no anchors, no decoder, no added loss. The main LSTM is a
    `keras.layers.LSTMCell` (attribute `cell`) with Keras's gate layout, so
    its weights can be moved to and from `keras.layers.LSTM`.

    This is `AuxLossRNN(keras.layers.LSTMCell(units), ...)`, with the same
    weights, configuration and saved files as in version 0.1.0.

    Args:
        units: Positive int, size of the main LSTM.
        aux_loss: `"reconstruct"` (default), `"predict"`, or `None` for a
            plain LSTM truncated to `bptt` steps (the paper's baseline).
        num_anchors: Positive int, anchors drawn per example and step.
            Defaults to 1. Windows may overlap; each gets its own truncation.
        aux_length: Int, the subsequence length `l`: tokens reconstructed
            before an anchor (anchor included) or predicted after it.
            At least 2 for `"reconstruct"` (the decoder is fed the first
            token of the window and predicts the other `l - 1`). Defaults
            to 600.
        bptt: Positive int, how many final steps the supervised gradient
            flows through, or `None` for full backpropagation ("Full BP").
            The auxiliary gradient stays truncated either way. Defaults to
            300.
        vocab_size: Int or `None`. An int means inputs are integer token ids
            `(batch, time)` in `[0, vocab_size)`, embedded by the layer, and
            the auxiliary head predicts token ids with cross entropy. `None`
            means inputs are floats `(batch, time, features)` and the head
            regresses the input vectors with mean squared error. Defaults
            to `None`.
        embedding_dim: Positive int, size of the token embedding (token
            inputs only). Defaults to 128.
        aux_units: Positive int, size of the decoder's LSTM layers. Defaults
            to `units`; with `"reconstruct"` it must equal `units`, since the
            decoder's bottom layer starts from the main LSTM's state.
        aux_layers: Positive int, number of decoder LSTM layers. The bottom
            one starts from the main state at the anchor (reconstruct) or
            reads the main LSTM's outputs (predict); the others start at
            zero. Defaults to 2.
        aux_hidden: Positive int, width of the decoder's feed-forward head.
            Defaults to 256.
        aux_dropout: Float in `[0, 1)`, dropout in the head. Defaults to 0.5.
        aux_weight: Non-negative float, weight of the auxiliary loss in the
            total loss. Defaults to 1.0.
        scheduled_sampling: Float in `[0, 1]`, the probability of feeding
            the reconstruction decoder its own sampled prediction instead of
            the true token at each step after the first. Token inputs with
            `"reconstruct"` only. Defaults to 0.0 (teacher forcing).
        return_sequences: Bool, return every step's output instead of the
            last one. In training, outputs before the last `bptt` steps
            carry no gradient. Defaults to `False`.
        return_state: Bool, also return the final `h` and `c`. Defaults to
            `False`.
        mask_zero: Bool, treat token id 0 as padding and mask it (token
            inputs only), as `keras.layers.Embedding(mask_zero=True)` does.
            Defaults to `False`.
        validate_inputs: Bool, check every batch at run time: token ids
            must lie in `[0, vocab_size)`, float inputs must be finite; a
            bad batch raises `InvalidArgumentError` naming the problem.
            Unchecked, an id of `vocab_size` or more fails in the embedding
            lookup on CPU, but a negative id is read from the end of the
            table and a NaN input makes the loss NaN (stop training on it
            with `keras.callbacks.TerminateOnNaN`). XLA drops the checks.
            Defaults to `False`.
        seed: Int or `None`, seed of the anchors, the head's dropout and
            scheduled sampling.
        stateful: Bool, carry the final state of each sequence in a batch
            over to the same row of the next batch (streams read in
            chunks), cut from the gradient; `reset_state()` zeroes it.
            Needs a fixed batch size. Defaults to `False`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Token ids `(batch, time)` when `vocab_size` is set (float
            tensors are cast to int32, as `keras.layers.Embedding` does,
            since a Sequential model without an `Input` hands its layers
            floats), else floats `(batch, time, features)`.
        training: Bool. Only in training are anchors drawn, the auxiliary
            loss added and gradients truncated (and in `evaluate`, which
            measures the auxiliary loss on held-out data).
        initial_state: Optional list of tensors, the main network's state
            before the first step (one per state tensor of the cell; for an
            LSTM `[h, c]`), as in `keras.layers.LSTM`.

    Output shape:
        `(batch, units)`, or `(batch, time, units)` with
        `return_sequences=True`; with `return_state=True`, a list
        `[output, h, c]` with `h` and `c` of shape `(batch, units)`.

    Masking:
        A mask from an upstream layer (`keras.layers.Masking`, an
        `Embedding` with `mask_zero=True`) or from `mask_zero` marks the
        valid steps of right-padded sequences. A masked step leaves the
        state as it was, so the output is the state after each sequence's
        last valid step, as in `keras.layers.LSTM`. In training, the
        supervised window is the last `bptt` valid steps of each sequence
        (its first `bptt` steps if it is shorter), anchors fall on each
        sequence's valid steps only, and masked targets add nothing to the
        auxiliary loss. A sequence shorter than one auxiliary window gets no
        anchor: it adds nothing to the auxiliary loss, which averages over
        the tokens of the other sequences (0 if none has room). With
        `return_sequences=True` the mask is passed on.

    Example:

    >>> layer = AuxLossLSTM(32, vocab_size=256, aux_length=20, bptt=10)
    >>> tokens = np.random.randint(0, 256, size=(4, 100))
    >>> layer(tokens).shape
    (4, 32)

    Reference:
        - [Trinh et al., 2018](https://arxiv.org/abs/1803.00144), "Learning
          Longer-term Dependencies in RNNs with Auxiliary Losses".
    """

    cell_class = keras.layers.LSTMCell
