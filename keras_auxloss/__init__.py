"""keras-auxloss: recurrent networks for very long sequences, trained with
truncated backpropagation and auxiliary losses (Trinh et al., ICML 2018).

Where things are:

- `windows.py`: where the windows lie; `sample_window_starts` draws the
  anchors;
- `recurrence.py`: the loop over time, behind one small interface
  (`backends/tensorflow.py`; `backends/portable.py` for JAX and PyTorch);
- `cells.py`: how a cell is stepped (any Keras cell; a fast LSTM path);
- `aux_loss_rnn.py`: the layer; `AuxLossRNN._truncated_run` is where
  truncation happens, `AuxLossRNN.call` where the auxiliary loss is added;
- `auxiliary.py`: the auxiliary decoder and its loss;
- `aux_loss_lstm.py`, `aux_loss_gru.py`: the layers for Keras's LSTM and GRU
  cells, sized by `units` (`keras_cell_layer.py`); `arguments.py`: the
  checks of every argument;
- `loss_tracker.py`: the `aux_loss` metric, its name, and when the loss is
  measured (training, and `evaluate` on held-out data);
- `distribute.py`: `fix_multi_worker_fit`, for `model.fit` under
  `tf.distribute.MultiWorkerMirroredStrategy` (imported on its own).
"""

from keras_auxloss.aux_loss_gru import AuxLossGRU
from keras_auxloss.aux_loss_lstm import AuxLossLSTM
from keras_auxloss.aux_loss_rnn import AuxLossRNN

__all__ = ["AuxLossGRU", "AuxLossLSTM", "AuxLossRNN"]
__version__ = "0.2.0"
