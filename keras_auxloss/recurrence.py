"""The loop over time, behind one small interface.

- `run(step, inputs, state, output, ...)`: one recurrent layer over a
  time-major sequence, with masking, the capture of the state at steps
  chosen per example, and an optional number of steps known only at run
  time (for the pass outside the gradient);
- `lstm_step`: the LSTM step on precomputed input gates (Keras's layout);
- `scan`: `carry = step(carry, inputs[t])` over time, every carry stacked;
- `assert_at_least`, `assert_token_ids`, `assert_finite`: run-time checks.

TensorFlow runs `backends/tensorflow.py` (a `tf.while_loop`, measured
faster there); JAX and PyTorch run `backends/portable.py`, written in
`keras.ops`. The backend is Keras's, chosen by `KERAS_BACKEND`.
"""

import keras

if keras.backend.backend() == "tensorflow":
    from keras_auxloss.backends.tensorflow import (
        assert_at_least,
        assert_finite,
        assert_token_ids,
        lstm_step,
        run,
        scan,
    )
else:
    from keras_auxloss.backends.portable import (
        assert_at_least,
        assert_finite,
        assert_token_ids,
        lstm_step,
        run,
        scan,
    )

__all__ = ["assert_at_least", "assert_finite", "assert_token_ids", "lstm_step", "run", "scan"]
