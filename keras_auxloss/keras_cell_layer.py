"""The layers built on one of Keras's own cells, sized by `units`."""

from keras_auxloss import arguments
from keras_auxloss.aux_loss_rnn import AuxLossRNN


class KerasCellLayer(AuxLossRNN):
    """`AuxLossRNN(cell_class(units), ...)`; its configuration holds
    `units` instead of the cell."""

    cell_class = None

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
        **kwargs,
    ):
        arguments.check_positive_int("units", units)
        cell = self.cell_class(units, dtype=kwargs.get("dtype"), name="cell")
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
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        return {**config, "units": self.units}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
