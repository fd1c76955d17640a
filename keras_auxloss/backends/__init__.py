"""The code that differs by Keras backend: the loop over time, the runs of
a fused kernel, and the run-time checks of inputs. `current` is the module
for the backend Keras runs (`KERAS_BACKEND`): `tensorflow.py` on TensorFlow
(a `tf.while_loop`, measured faster there), `torch.py` on PyTorch (Python
loops whose backward pass is linear in the length, where `keras.ops.scan`'s
is quadratic), `portable.py`, in `keras.ops`, on JAX (and any other
backend).

Each has the same functions, which `cells.py` and `auxiliary.py` call as
`current.run`, `current.fused_run`, ...:

- `run(step, inputs, state, initial_output, ...)`: one recurrent layer over
  a time-major sequence, with masking, the capture of the output and state
  at steps chosen per example, and an optional number of steps known only
  at run time (for the pass outside the gradient); it returns a
  `RunResult` (`run_result.py`); the arguments are described in
  `tensorflow.py`;
- `fused_run(kernel, inputs, state, initial_output, ...)`: the same run
  through a fused kernel (`kernels.Kernel`: cuDNN through Keras, PyTorch's
  CPU kernel in `torch_fused.py`), cut into the segments the kernel runs
  whole, or `NotImplementedError` where the backend cannot cut it (JAX);
- `lstm_step`: the LSTM step on the input's gates (Keras's layout);
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
