"""The code that differs by Keras backend: the loop over time and the
run-time checks of inputs. `current` is the module for the backend Keras
runs (`KERAS_BACKEND`): `tensorflow.py` on TensorFlow (a `tf.while_loop`,
measured faster there), `torch.py` on PyTorch (Python loops whose backward
pass is linear in the length, where `keras.ops.scan`'s is quadratic),
`portable.py`, in `keras.ops`, on JAX (and any other backend).
"""

import keras

if keras.backend.backend() == "tensorflow":
    from keras_auxloss.backends import tensorflow as current
elif keras.backend.backend() == "torch":
    from keras_auxloss.backends import torch as current
else:
    from keras_auxloss.backends import portable as current

__all__ = ["current"]
