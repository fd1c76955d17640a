"""`AuxLossGRU`: a GRU trained with truncated backpropagation and an
auxiliary reconstruction or prediction loss at random anchors."""

import keras

from keras_auxloss.documentation import documented
from keras_auxloss.keras_cell_layer import KerasCellLayer


@keras.saving.register_keras_serializable(package="keras_auxloss")
@documented(
    "units",
    "Positive int, size of the main GRU.",
    "The keyword arguments of `keras.layers.GRUCell` (`kernel_initializer`, "
    "`recurrent_initializer`, `bias_initializer`, `use_bias`, the regularizers and "
    "constraints, `dropout` and `recurrent_dropout`, ...), which go to the cell as "
    "`keras.layers.GRU` passes them; and "
    "base layer keyword arguments, such as `name` and `dtype`.",
)
class AuxLossGRU(KerasCellLayer):
    """GRU with truncated backpropagation and an unsupervised auxiliary loss.

    `AuxLossRNN(keras.layers.GRUCell(units), ...)`: the main network is a
    `keras.layers.GRUCell` (attribute `cell`) with Keras's defaults, so its
    weights can be moved to and from `keras.layers.GRU`; for reconstruction
    the decoder's bottom layer is a GRU cell of `units` that starts from the
    main state at the anchor. Every other argument, the truncation, the
    masking and the auxiliary loss are those of `AuxLossRNN`; see there.

    Args:
    {arguments}

    Call arguments:
    {call_arguments}

    Output shape:
        `(batch, units)`, or `(batch, time, units)` with
        `return_sequences=True`; with `return_state=True`, a list
        `[output, h]`.

    Masking:
    {masking}

    Example:

    >>> layer = AuxLossGRU(32, vocab_size=256, aux_length=20, bptt=10)
    >>> tokens = np.random.randint(0, 256, size=(4, 100))
    >>> tuple(layer(tokens).shape)
    (4, 32)

    Reference:
        - Trinh, Dai, Luong and Le, "Learning Longer-term Dependencies in
          RNNs with Auxiliary Losses", ICML 2018.
          https://arxiv.org/abs/1803.00144
    """

    cell_class = keras.layers.GRUCell

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
