"""The `LinearRecurrentUnitCell`'s kernel (`kernels.py`'s `"lru"`): a run
of the cell over time with its matrix products taken out of the loop.

The cell's state follows a linear recurrence, `x_t = lambda * x_{t-1} +
b_t` with `b_t = gamma * (u_t @ B)` (complex, diagonal `lambda`), and only
its readout (`Re(x_t @ C) + u_t @ D`, GELU, GLU) is nonlinear, reading
each step's state on its own. So a run computes `b` for all its steps in
one product, steps only the elementwise recurrence (`current.run`, or
`current.scan` where every state is read), and reads out once: every step
in one product where every output is wanted, else the last step alone. The
loop steps the cell's `call`, seven matrix products a step.

Measured on TensorFlow's CPU (`python -m benchmarks.lru_kernel
--recurrence`), this elementwise loop was faster than the recurrence
computed in parallel over time by powers of `lambda` within chunks: on a
CPU a step's cost is the loop's own more than its arithmetic. The values are the
loop's to float rounding (bit for bit on TensorFlow's CPU).
"""

from keras import ops

from keras_auxloss.backends import current


def run(cell, inputs, state, return_sequences):
    """`kernels.Kernel.run` for a built `LinearRecurrentUnitCell`: the cell
    over time-major `inputs` `(time, batch, input_dim)` from `state` (its
    real and imaginary parts); `(output, state, sequences)`."""
    u = ops.cast(inputs, cell._recurrence_dtype())
    state = tuple(ops.cast(s, u.dtype) for s in state)
    lambda_re, lambda_im, gamma = cell.eigenvalues()
    b = ops.concatenate(cell.inputs_to_state(u, gamma), axis=-1)  # (time, batch, 2 * state)
    size = ops.shape(state[0])[-1]
    compute = cell.compute_dtype

    def step(b_t, x):
        real, imaginary = cell.recur((lambda_re, lambda_im), x, (b_t[:, :size], b_t[:, size:]))
        if compute != u.dtype:  # The cell keeps its state in the compute dtype.
            real, imaginary = (ops.cast(ops.cast(s, compute), u.dtype) for s in (real, imaginary))
        return real, (real, imaginary)

    if not return_sequences:
        final = current.run(step, b, state, state[0]).state
        output = cell.readout(final[0], final[1], u[-1])
        return output, tuple(ops.cast(s, compute) for s in final), None
    real, imaginary = current.scan(lambda x, b_t: step(b_t, x)[1], state, b)
    sequences = cell.readout(real, imaginary, u)
    final = (ops.cast(real[-1], compute), ops.cast(imaginary[-1], compute))
    return sequences[-1], final, sequences
