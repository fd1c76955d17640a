"""keras-auxloss: recurrent networks for very long sequences, trained with
truncated backpropagation and auxiliary losses (Trinh et al., ICML 2018).

`AuxLossRNN.call` is the method in three steps; each has its module:

1. `windows.py`: where the windows lie; `windows.locate` draws the anchors
   (`sample_window_starts`) and places the supervised window;
2. `truncation.py`: where truncation happens: every cut of the recurrent
   state, the capture pass and the supervised window;
3. `auxiliary.py`: the auxiliary loss at the anchors and the decoder,
   `AuxiliaryDecoder` (its `loss`: `reconstruction_loss`,
   `prediction_loss`); `AuxLossRNN.call` adds it with `add_loss`.

From `call` to the loop over time: `truncation.truncated_run` runs the main
network, `MainNetwork.run` and `CellRunner.run` in `cells.py`, which call
the runner's fused kernel where it has one (`kernels.py` chooses it:
cuDNN through Keras on a GPU, PyTorch's own on its CPU;
`backends.current.fused_run` cuts the run into segments), else the loop of
the backend Keras runs, `backends.current.run` (in
`backends/tensorflow.py`, `torch.py` or `portable.py`); either's result
is a `RunResult` (`output`, `state`, `sequences`, `captured`).

Around them: `aux_loss_rnn.py` (the layer: it builds and owns the main
network, the decoder and the carried state), `aux_loss_lstm.py`,
`aux_loss_gru.py` and `keras_cell_layer.py` (the layers on Keras's LSTM and
GRU cells, sized by `units`); `linear_recurrent_unit_cell.py`
(`LinearRecurrentUnitCell`, a cell of the package's own with a long memory,
for `AuxLossRNN` or `keras.layers.RNN`) and `linear_recurrent_unit_kernel.py` (its
kernel, the matrix products out of the loop); `arguments.py` (every argument's
name, default, check and documentation, once); `documentation.py` (the
`Args:` sections made from them); `seeds.py` (the seeds of the layer's random
streams); `cell_checks.py` (the checks of
`AuxLossRNN`'s `cell`); `cells.py` (how a cell is stepped and run over
time, and `MainNetwork`: the main cell with its embedding, and how it reads
its inputs); `kernels.py` (which kernel runs a cell's runs: cuDNN, PyTorch's CPU
kernel, the LRU's or the loop, `use_cudnn`, `set_kernel`); `backends/` (the loop
over time and the fused kernel's segments per Keras backend,
`torch_fused.py` PyTorch's CPU kernels for the LSTM and GRU); `inputs.py` (inputs
and masks as Keras takes them, and their run-time checks); `dropout.py` (the
main cell's dropout masks, drawn once per call); `streams.py` (initial and
carried state, in plain functions the layer calls); `loss_tracker.py` (the
`aux_loss` metric and its name); `testing.py` (fixing the anchors in tests,
a reference kernel in cuDNN's place);
`distribute.py` (`keras_auxloss.distribute.fix_multi_worker_fit`, imported
on its own).

Glossary:

- anchor: a position drawn at random in a sequence, where the auxiliary
  decoder starts from the main network's state. For reconstruction it is
  the last step of its window (the decoder reconstructs the `aux_length`
  steps that end there); for prediction the first (the decoder predicts
  the `aux_length` steps that follow it).
- window: a span of steps run again differentiably from a state cut from
  the gradient; the gradient reaches the inputs through windows only.
- window start: a window's first step. The state "at a window's start" is
  the state after the step before it.
- supervised window: the last `bptt` steps up to each sequence's last
  valid step, through which the supervised loss backpropagates.
- capture: keeping the output and state where each window starts, during
  one pass over the whole sequence outside the gradient (the capture pass).
"""

from keras_auxloss.aux_loss_gru import AuxLossGRU
from keras_auxloss.aux_loss_lstm import AuxLossLSTM
from keras_auxloss.aux_loss_rnn import AuxLossRNN
from keras_auxloss.linear_recurrent_unit_cell import LinearRecurrentUnitCell

__all__ = ["AuxLossGRU", "AuxLossLSTM", "AuxLossRNN", "LinearRecurrentUnitCell"]
__version__ = "0.3.0"
