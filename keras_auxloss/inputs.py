"""What the layer reads: its dense inputs and their mask, taken as
`keras.layers.Embedding` and `keras.layers.RNN` take them (ragged and
sparse tensors are refused), the mask checked to fit the inputs, and the
inputs checked at run time when `validate_inputs` asks
(`keras_auxloss.backends`); and what the main cell reads of them at each
step (`feature_size`)."""

import keras
from keras import ops

from keras_auxloss.backends import current


def standardize_inputs(inputs, *, vocab_size, dtype, validate, owner):
    """Inputs as the layer computes with them: any tensor-like (a
    `tf.Variable` too); float features cast to `dtype`; token ids of any
    integer dtype (cast to int32 unless int64, as `keras.layers.Embedding`
    does), a negative id `-k` read as `vocab_size - k` as the embedding
    reads it, so that it is also the auxiliary target. `owner` names the
    layer in the errors of the run-time checks."""
    _refuse_ragged_and_sparse(inputs, owner)
    inputs = ops.convert_to_tensor(inputs)
    if not hasattr(inputs, "ndim"):  # A tf.Variable stays one: read it.
        inputs = ops.copy(inputs)
    if vocab_size is None:
        # Integer features (rank 3: build rejects rank-2 ids) are numbers.
        inputs = ops.cast(inputs, dtype)
        return current.assert_finite(inputs, owner) if validate else inputs
    if keras.backend.standardize_dtype(inputs.dtype) not in ("int32", "int64"):
        # Keras hands a Sequential model without an Input layer its data
        # as floats, NumPy and tfds hand pixels as uint8; like
        # keras.layers.Embedding, read them as int32 ids.
        inputs = ops.cast(inputs, "int32")
    if validate:
        inputs = current.assert_token_ids(inputs, vocab_size, owner)
    return ops.where(inputs < 0, inputs + vocab_size, inputs)


def feature_size(input_shape, *, vocab_size, embedding_dim, owner):
    """What the main cell reads at each step: `embedding_dim` for token ids
    `(batch, time)` (with `vocab_size`), the features' number for floats
    `(batch, time, features)`; a `ValueError` naming `owner` for any other
    shape."""
    if vocab_size is not None:
        if len(input_shape) != 2:
            raise ValueError(
                f"{owner} with vocab_size={vocab_size} expects token "
                f"ids of shape (batch, time), got inputs of shape {input_shape}. "
                "For float inputs of shape (batch, time, features), set "
                "vocab_size=None."
            )
        return embedding_dim
    if len(input_shape) != 3 or input_shape[-1] is None:
        raise ValueError(
            f"{owner} with vocab_size=None expects float inputs of "
            "shape (batch, time, features) with known features, got "
            f"inputs of shape {input_shape}. For token ids of shape "
            "(batch, time), set `vocab_size`."
        )
    return input_shape[-1]


def standardize_mask(mask, inputs, *, mask_zero, owner):
    """The `(batch, time)` boolean mask of valid steps: the given `mask`
    (`(batch, time)`, or `(batch, time, 1)` as Keras's recurrent layers
    also take it), and with `mask_zero` the non-zero token ids; `None` when
    every step is valid."""
    if mask is not None:
        mask = ops.cast(mask, "bool")
        given = tuple(mask.shape)
        if len(mask.shape) == 3 and mask.shape[-1] == 1:
            mask = ops.squeeze(mask, axis=-1)
        if len(mask.shape) != 2:
            raise ValueError(
                f"{owner} expects a mask of shape (batch, time) or (batch, time, 1), got a "
                f"mask of shape {given}."
            )
        mask = _check_mask_fits(mask, inputs, given, owner)
    if mask_zero:
        nonzero = ops.not_equal(inputs, 0)
        mask = nonzero if mask is None else ops.logical_and(mask, nonzero)
    return mask


def _check_mask_fits(mask, inputs, given, owner):
    """`mask`, checked to have the batch size and length of `inputs`: now
    where both are known (always on JAX and PyTorch), else when the batch
    runs (TensorFlow's unknown dimensions). `given` is the mask's shape as
    passed."""
    expected = tuple(inputs.shape[:2])
    message = (
        f"{owner} got a mask of shape {given} for inputs of shape {tuple(inputs.shape)}. "
        "Expected a mask of shape (batch, time) or (batch, time, 1) with the inputs' "
        f"batch size and number of steps, (batch, time) = {expected}."
    )
    pairs = list(zip(mask.shape, expected))
    if any(m is not None and i is not None and m != i for m, i in pairs):
        raise ValueError(message)
    unknown = any(m is None or i is None for m, i in pairs)
    if unknown and not keras.backend.is_keras_tensor(mask):
        return current.assert_mask_fits(mask, inputs, message)
    return mask


def _refuse_ragged_and_sparse(inputs, owner):
    """Raises a `ValueError` for a `tf.RaggedTensor` or `tf.SparseTensor`:
    the layer reads dense padded batches. Read by class name, so that other
    backends need not import TensorFlow."""
    kind = type(inputs).__name__
    if kind in ("RaggedTensor", "SparseTensor"):
        raise ValueError(
            f"{owner} expects a dense tensor, got a `tf.{kind}` of shape {inputs.shape}. "
            "Pass a dense, right-padded tensor and mark its padding with a mask: "
            "`ragged.to_tensor()` (or `tf.sparse.to_dense(sparse)`) with "
            "`keras.layers.Masking`, the `mask` call argument, or `mask_zero=True` "
            "for token ids padded with 0."
        )
