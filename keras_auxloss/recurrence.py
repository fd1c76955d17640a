"""The loop over time, behind one small interface.

- `run(step, inputs, state, initial_output, ...)`: one recurrent layer over
  a time-major sequence, with masking, the capture of the output and state
  at steps chosen per example, and an optional number of steps known only
  at run time (for the pass outside the gradient);
- `lstm_step`: the LSTM step on precomputed input gates (Keras's layout);
- `scan`: `carry = step(carry, inputs[t])` over time, every carry stacked.

Each backend has its own (`keras_auxloss.backends`).
"""

from keras_auxloss.backends import current

lstm_step = current.lstm_step
run = current.run
scan = current.scan

__all__ = ["lstm_step", "run", "scan"]
