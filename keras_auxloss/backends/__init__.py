"""The code that differs by Keras backend: the loop over time and the
run-time checks of inputs. `current` is the module for the backend Keras
runs (`KERAS_BACKEND`): `tensorflow.py` on TensorFlow (a `tf.while_loop`,
measured faster there), `torch.py` on PyTorch (Python loops whose backward
pass is linear in the length, where `keras.ops.scan`'s is quadratic, and
PyTorch's fused LSTM and GRU kernels, `torch_fused.py`), `portable.py`, in
`keras.ops`, on JAX (and any other backend).

Each has the same functions, which `cells.py` and `auxiliary.py` call as
`current.run`, `current.scan`, ...:

- `run(step, inputs, state, initial_output, ...)`: one recurrent layer over
  a time-major sequence, with masking, the capture of the output and state
  at steps chosen per example, and an optional number of steps known only
  at run time (for the pass outside the gradient); it returns a
  `RunResult` (`run_result.py`), the arguments are described in
  `tensorflow.py`;
- `project(gates, inputs)`: the LSTM's input gates `gates(inputs)` (`x @ W
  + b`, computed outside the loop), as `run` and `lstm_step` read them (on
  PyTorch computed where they are read, so that a fused kernel can read
  `inputs` instead);
- `token_table(gates, embeddings)`: every token's gates, or `None` where
  the backend reads the embeddings instead (PyTorch);
- `lstm_step`: the LSTM step on those gates (Keras's layout);
- `scan`: `carry = step(carry, inputs[t])` over time, every carry stacked;
- `assert_token_ids`, `assert_finite`, `assert_batch_size`,
  `assert_mask_fits`: the run-time checks of inputs.
"""

import keras

from keras_auxloss.backends.run_result import RunResult

if keras.backend.backend() == "tensorflow":
    from keras_auxloss.backends import tensorflow as current
elif keras.backend.backend() == "torch":
    from keras_auxloss.backends import torch as current
else:
    from keras_auxloss.backends import portable as current

__all__ = ["RunResult", "current"]
