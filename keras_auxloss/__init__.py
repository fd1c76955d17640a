"""keras-auxloss: recurrent networks for very long sequences, trained with
truncated backpropagation and auxiliary losses (Trinh et al., ICML 2018).

Where things are:

- `windows.py`: where the windows lie; `sample_window_starts` draws the
  anchors;
- `recurrence.py`: the loop over time (the one TensorFlow-specific module);
- `cells.py`: how a cell is stepped (any Keras cell; a fast LSTM path);
- `aux_loss_rnn.py`: the layer; `AuxLossRNN._truncated_run` is where
  truncation happens, `AuxLossRNN.call` where the auxiliary loss is added;
- `auxiliary.py`: the auxiliary decoder and its loss;
- `aux_loss_lstm.py`, `aux_loss_gru.py`: the layers for Keras's LSTM and GRU
  cells, sized by `units` (`keras_cell_layer.py`); `arguments.py`: the
  checks of every argument.
"""

from keras_auxloss.aux_loss_gru import AuxLossGRU
from keras_auxloss.aux_loss_lstm import AuxLossLSTM
from keras_auxloss.aux_loss_rnn import AuxLossRNN

__all__ = ["AuxLossGRU", "AuxLossLSTM", "AuxLossRNN"]
__version__ = "0.1.0"
