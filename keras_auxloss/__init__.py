"""keras-auxloss: LSTMs for very long sequences, trained with truncated
backpropagation and auxiliary losses (Trinh et al., ICML 2018)."""

from keras_auxloss.aux_loss_lstm import AuxLossLSTM

__all__ = ["AuxLossLSTM"]
__version__ = "0.1.0"
