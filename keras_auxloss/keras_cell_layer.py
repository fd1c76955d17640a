"""The layers built on one of Keras's own cells, sized by `units`, that take
the cell's arguments as `keras.layers.LSTM` and `GRU` take them."""

import inspect

from keras_auxloss import arguments
from keras_auxloss.aux_loss_rnn import AuxLossRNN
from keras_auxloss.seeds import cell_seed


class KerasCellLayer(AuxLossRNN):
    """`AuxLossRNN(cell_class(units, **cell_arguments), ...)`: the keyword
    arguments that `cell_class` takes (`kernel_initializer`, `use_bias`,
    `implementation`, `dropout`, ...) go to the cell, whose `seed` (of its
    dropout) is the layer's `seed` plus `seeds.CELL_SEED_OFFSET`, a stream apart
    from the layer's own draws. Its configuration holds `units` and those
    arguments instead of the cell. A subclass's `__init__` makes its cell
    with `make_cell`, then passes it to `AuxLossRNN.__init__` and keeps the
    names of the cell's arguments in `_cell_argument_names`."""

    cell_class = None

    @classmethod
    def cell_argument_names(cls):
        """The arguments that the layer hands to its cell."""
        parameters = set(inspect.signature(cls.cell_class.__init__).parameters)
        # Keras's cells read `implementation` from their keyword arguments.
        return (parameters - {"self", "units", "seed", "kwargs"}) | {"implementation"}

    @classmethod
    def make_cell(cls, units, seed, kwargs):
        """`(cell, cell_arguments, kwargs)`: the cell, `cell_class(units)`
        with the cell's arguments found in a constructor's `kwargs` (and its
        `dtype`), those arguments, and the keyword arguments left for the
        base layer."""
        arguments.check_positive_int("units", units)
        names = cls.cell_argument_names()
        cell_arguments = {name: value for name, value in kwargs.items() if name in names}
        kwargs = {name: value for name, value in kwargs.items() if name not in names}
        cell = cls.cell_class(
            units,
            **cell_arguments,
            seed=cell_seed(seed, cell_arguments),
            dtype=kwargs.get("dtype"),
            name="cell",
        )
        return cell, cell_arguments, kwargs

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        cell_arguments = {
            name: cell_config[name] if name in cell_config else getattr(self.cell, name)
            for name in self._cell_argument_names
        }
        return {**config, "units": self.units, **cell_arguments}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
