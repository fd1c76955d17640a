"""`AuxLossLSTM`: an LSTM trained with truncated backpropagation and an
auxiliary reconstruction or prediction loss at random anchors."""

import keras

from keras_auxloss.documentation import documented
from keras_auxloss.keras_cell_layer import KerasCellLayer


@keras.saving.register_keras_serializable(package="keras_auxloss")
@documented(
    "units",
    "Positive int, size of the main LSTM.",
    "The keyword arguments of `keras.layers.LSTMCell` (`kernel_initializer`, "
    "`recurrent_initializer`, `bias_initializer`, `use_bias`, the regularizers and "
    "constraints, `dropout` and `recurrent_dropout`, ...), which go to the cell as "
    "`keras.layers.LSTM` passes them; and "
    "base layer keyword arguments, such as `name` and `dtype`.",
)
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
    {arguments}

    Call arguments:
    {call_arguments}

    Output shape:
        `(batch, units)`, or `(batch, time, units)` with
        `return_sequences=True`; with `return_state=True`, a list
        `[output, h, c]` with `h` and `c` of shape `(batch, units)`.

    Masking:
    {masking}

    Example:

    >>> layer = AuxLossLSTM(32, vocab_size=256, aux_length=20, bptt=10)
    >>> tokens = np.random.randint(0, 256, size=(4, 100))
    >>> tuple(layer(tokens).shape)
    (4, 32)
    >>> model = keras.Sequential([keras.Input((100,), dtype="int32"), layer,
    ...                           keras.layers.Dense(2)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> sorted(model.fit(tokens, np.zeros(4), verbose=0).history)
    ['aux_loss', 'loss']

    Reference:
        - Trinh, Dai, Luong and Le, "Learning Longer-term Dependencies in
          RNNs with Auxiliary Losses", ICML 2018.
          https://arxiv.org/abs/1803.00144
    """

    cell_class = keras.layers.LSTMCell

    def __init__(
        self,
        units,
        aux_loss="reconstruct",
        num_anchors=1,
        aux_length=600,
        bptt=300,
        vocab_size=None,
        embedding_dim=128,
        aux_units=None,
        aux_layers=2,
        aux_hidden=256,
        aux_dropout=0.5,
        aux_weight=1.0,
        scheduled_sampling=0.0,
        return_sequences=False,
        return_state=False,
        mask_zero=False,
        validate_inputs=False,
        seed=None,
        stateful=False,
        zero_output_for_mask=False,
        aux_sampled_softmax=None,
        go_backwards=False,
        unroll=False,
        use_cudnn="auto",
        **kwargs,
    ):
        cell, cell_arguments, kwargs = self.make_cell(units, seed, kwargs)
        super().__init__(
            cell,
            aux_loss=aux_loss,
            num_anchors=num_anchors,
            aux_length=aux_length,
            bptt=bptt,
            vocab_size=vocab_size,
            embedding_dim=embedding_dim,
            aux_units=aux_units,
            aux_layers=aux_layers,
            aux_hidden=aux_hidden,
            aux_dropout=aux_dropout,
            aux_weight=aux_weight,
            scheduled_sampling=scheduled_sampling,
            return_sequences=return_sequences,
            return_state=return_state,
            mask_zero=mask_zero,
            validate_inputs=validate_inputs,
            seed=seed,
            stateful=stateful,
            zero_output_for_mask=zero_output_for_mask,
            aux_sampled_softmax=aux_sampled_softmax,
            go_backwards=go_backwards,
            unroll=unroll,
            use_cudnn=use_cudnn,
            **kwargs,
        )
        self._cell_argument_names = tuple(cell_arguments)
