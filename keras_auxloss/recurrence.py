"""The loop over time, behind one small interface.

- `run(step, inputs, state, initial_output, ...)`: one recurrent layer over
  a time-major sequence, with masking, the capture of the output and state
  at steps chosen per example, and an optional number of steps known only
  at run time (for the pass outside the gradient);
- `project(gates, inputs)`: the LSTM's input gates `gates(inputs)` (`x @ W
  + b`, computed outside the loop), as `run` and `lstm_step` read them (on
  PyTorch computed where they are read, so that a fused kernel can read
  `inputs` instead);
- `token_table(gates, embeddings)`: every token's gates, or `None` where
  the backend reads the embeddings instead (PyTorch);
- `lstm_step`: the LSTM step on those gates (Keras's layout);
- `scan`: `carry = step(carry, inputs[t])` over time, every carry stacked.

Each backend has its own (`keras_auxloss.backends`).
"""

from keras_auxloss.backends import current

lstm_step = current.lstm_step
project = current.project
run = current.run
token_table = current.token_table
scan = current.scan

__all__ = ["lstm_step", "project", "run", "scan", "token_table"]
