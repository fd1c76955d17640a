"""`LinearRecurrentUnitCell`: the Linear Recurrent Unit of Orvieto et al.
(ICML 2023) as a Keras RNN cell, a diagonal complex linear recurrence with
timescales set at initialisation, for `keras.layers.RNN` and `AuxLossRNN`."""

import math

import keras
from keras import ops

# Under float16 or bfloat16 the recurrence runs in float32: `|lambda|` near
# 1 (0.999 is a timescale of 1,000 steps) rounds to 1 in bfloat16.
_LOW_PRECISION = ("float16", "bfloat16")
# The smallest `|lambda|^2` drawn, so that `nu_log` stays finite for `r_min=0`.
_MIN_SQUARED_MODULUS = 1e-8
# The ring's inner edge and largest phase where `r_min` and `max_phase` are `None`.
_DEFAULT_R_MIN, _DEFAULT_MAX_PHASE = 0.9, 2 * math.pi
_EIGENVALUE_INITS = ("ring", "fourier")
# The weights in the order `build` creates them: that of the saved files.
_WEIGHT_ORDER = (
    "nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D",
    "value_kernel", "value_bias", "gate_kernel", "gate_bias",
)  # fmt: skip


def _invalid(name, expected, value):
    return ValueError(
        f"Received an invalid value for argument `{name}`, expected {expected}, got {value!r}."
    )


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@keras.saving.register_keras_serializable(package="keras_auxloss")
class LinearRecurrentUnitCell(keras.layers.Layer):
    """The Linear Recurrent Unit (LRU), a cell with a long memory.

    The LRU of Orvieto et al. (2023) is a linear recurrence with a diagonal,
    complex state matrix, parametrised so that its eigenvalues stay inside
    the unit disc and initialised so that their moduli cover a chosen range
    of timescales. At each step, from the input `u_t` (`input_dim`
    features) and the complex state `x_{t-1}` (`state_dim` units)::

        lambda = exp(-exp(nu_log) + i * exp(theta_log))        # |lambda| < 1
        x_t = lambda * x_{t-1} + exp(gamma_log) * (u_t @ B)    # B = B_re + i B_im
        y_t = Re(x_t @ C) + u_t @ D                            # C = C_re + i C_im
        output_t = GLU(GELU(y_t))                              # `units` outputs

    with `GLU(z) = (z @ W_value + b_value) * sigmoid(z @ W_gate + b_gate)`,
    the readout of the paper's block (its normalisation and residual are
    left to the model). `nu_log`, `theta_log` and `gamma_log` are trained,
    as in the paper. The paper's `D` is diagonal, its inputs and outputs
    having the same size; here `D` is a full `(input_dim, units)` matrix,
    since the cell's inputs and outputs differ in size.

    Initialisation, as in the paper's Appendix A (`eigenvalue_init="ring"`):
    `|lambda|` is drawn uniformly on the ring `r_min <= |lambda| <= r_max`
    of the complex plane (`|lambda|^2` uniform in `[r_min^2, r_max^2]`),
    its phase uniformly in `[0, max_phase]`. With `eigenvalue_init="fourier"`
    every `|lambda|` is `r_max` and the `N = state_dim` phases are evenly
    spaced, `pi * (n + 1/2) / N` for `n = 0 .. N - 1`: the state is then a
    leaky Fourier transform of the projected inputs, `N` frequencies over
    `(0, pi)` each fading in about `max_timescale` steps (the diagonal
    state spaces of Gu et al., 2022, initialise theirs likewise, with
    phases `pi * n` scaled by a step size). Either way `gamma_log =
    log(sqrt(1 - |lambda|^2))`, which keeps
    the state's variance that of the input; `B_re` and `B_im` are normal
    with variance `1 / (2 * input_dim)`, `C_re` and `C_im` with variance
    `1 / state_dim`, `D` with variance `1 / input_dim`; the GLU's kernels
    are Glorot-uniform, its biases zero. `train_eigenvalues=False` keeps
    `nu_log`, `theta_log` and `gamma_log` as initialised (non-trainable
    weights): a fixed memory, which only its input and readout learn to use.

    Timescales: a unit with `|lambda| = r` forgets by `exp(-1)` in
    `-1 / log(r)`, about `1 / (1 - r)` steps, so `r_max=0.999` remembers
    about 1,000 steps. `max_timescale=T` sets `r_max = exp(-1 / T)`; set it
    to about the sequence length so that some units remember all of it.

    The state is the complex `x_t` as two real tensors, its real and
    imaginary parts, each `(batch, state_dim)`: `state_size` is
    `[state_dim, state_dim]`, `output_size` is `units`. The state is kept
    in the cell's compute dtype, as Keras's RNN keeps it; under a float16
    or bfloat16 policy each step is computed in float32 (`lambda` near 1 is
    not representable in bfloat16) and the new state cast back, so for the
    longest timescales under `mixed_bfloat16` give the cell
    `dtype="float32"`.

    Args:
        units: Positive integer, the size of the output.
        state_dim: Positive integer or `None`, the number of complex state
            units; `None` (default) for `units`.
        r_min: Float in `[0, r_max)` or `None`, the smallest modulus of
            `lambda` at initialisation on the ring. `None` (default) for
            `0.9` (timescales from about 10 steps); leave it `None` with
            `eigenvalue_init="fourier"`.
        r_max: Float in `(r_min, 1)` or `None`, the largest modulus of
            `lambda` at initialisation. `None` (default) for `0.999`, or
            `exp(-1 / max_timescale)` with `max_timescale`.
        max_timescale: Positive float or `None` (default), the longest
            timescale at initialisation, in steps: sets `r_max` (give one of
            the two).
        max_phase: Float in `(0, 2 * pi]` or `None`, the largest phase of
            `lambda` at initialisation on the ring. `None` (default) for
            `2 * pi`; leave it `None` with `eigenvalue_init="fourier"`.
        seed: Integer or `None` (default), the seed of the initialisation.
        eigenvalue_init: `"ring"` (default, the paper's: moduli and phases
            drawn at random) or `"fourier"` (one modulus `r_max`, evenly
            spaced phases).
        train_eigenvalues: Boolean, whether `nu_log`, `theta_log` and
            `gamma_log` train. Defaults to `True`, as in the paper.
        **kwargs: Keras `Layer` arguments (`name`, `dtype`).

    Call arguments:
        inputs: A tensor `(batch, input_dim)`, one step's input.
        states: A list of two tensors `(batch, state_dim)`, the real and
            imaginary parts of the state.
        training: Unused; accepted as Keras's RNN cells accept it.

    Masking:
        Masks are applied by the layer that runs the cell: in
        `keras.layers.RNN` and `AuxLossRNN` a masked step keeps the state.
        Keras's JAX loop takes a cell's first state for its previous output
        at a masked step, which this cell's is not: on JAX, give
        `keras.layers.RNN` `zero_output_for_mask=True` with masks
        (`AuxLossRNN` keeps the previous output itself).

    Returns:
        `(output, [real, imaginary])`: the output `(batch, units)` and the
        new state, in the cell's compute dtype.

    Example:

    >>> cell = LinearRecurrentUnitCell(32, state_dim=64, max_timescale=1000)
    >>> cell.state_size, cell.output_size
    ([64, 64], 32)
    >>> layer = keras.layers.RNN(cell, return_state=True)
    >>> output, real, imaginary = layer(np.random.normal(size=(4, 100, 3)))
    >>> tuple(output.shape), tuple(real.shape)
    ((4, 32), (4, 64))

    Reference:
        - Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu and De, "Resurrecting
          Recurrent Neural Networks for Long Sequences", ICML 2023.
          https://arxiv.org/abs/2303.06349
    """

    def __init__(
        self,
        units,
        state_dim=None,
        r_min=None,
        r_max=None,
        max_timescale=None,
        max_phase=None,
        seed=None,
        eigenvalue_init="ring",
        train_eigenvalues=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not _is_positive_int(units):
            raise _invalid("units", "a positive integer", units)
        if state_dim is not None and not _is_positive_int(state_dim):
            raise _invalid("state_dim", "a positive integer or None", state_dim)
        _check_eigenvalue_init(eigenvalue_init, r_min, max_phase)
        if not isinstance(train_eigenvalues, bool):
            raise _invalid("train_eigenvalues", "a boolean", train_eigenvalues)
        # "fourier" reads no inner edge: any r_max in (0, 1) will do.
        fourier = eigenvalue_init == "fourier"
        _check_ring(
            (0.0 if fourier else _DEFAULT_R_MIN) if r_min is None else r_min,
            r_max,
            max_timescale,
            _DEFAULT_MAX_PHASE if max_phase is None else max_phase,
        )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise _invalid("seed", "an integer or None", seed)
        self.units = units
        self.state_dim = state_dim
        self.r_min = r_min
        self.r_max = r_max
        self.max_timescale = max_timescale
        self.max_phase = max_phase
        self.seed = seed
        self.eigenvalue_init = eigenvalue_init
        self.train_eigenvalues = train_eigenvalues
        self._ring_max = _ring_max(r_max, max_timescale)

    @property
    def state_size(self):
        size = self.state_dim or self.units
        return [size, size]

    @property
    def output_size(self):
        return self.units

    def _seed(self, offset):
        return None if self.seed is None else self.seed + offset

    def build(self, input_shape):
        input_dim = input_shape[-1]
        size = self.state_dim or self.units
        # Created in this order (`_WEIGHT_ORDER`, that of the saved files).
        self._build_eigenvalues(size)
        b_std, c_std = (2 * input_dim) ** -0.5, size**-0.5
        self.B_re = self._weight("B_re", (input_dim, size), self._normal(b_std, 2))
        self.B_im = self._weight("B_im", (input_dim, size), self._normal(b_std, 3))
        self.C_re = self._weight("C_re", (size, self.units), self._normal(c_std, 4))
        self.C_im = self._weight("C_im", (size, self.units), self._normal(c_std, 5))
        self.D = self._weight("D", (input_dim, self.units), self._normal(input_dim**-0.5, 6))
        glorot = keras.initializers.GlorotUniform
        square = (self.units, self.units)
        self.value_kernel = self._weight("value_kernel", square, glorot(self._seed(7)))
        self.value_bias = self._weight("value_bias", (self.units,), "zeros")
        self.gate_kernel = self._weight("gate_kernel", square, glorot(self._seed(8)))
        self.gate_bias = self._weight("gate_bias", (self.units,), "zeros")

    def _weight(self, name, shape, initializer, trainable=True):
        # Every weight is float32 and read uncast: the recurrence runs in
        # float32, the readout casts what it reads.
        return self.add_weight(
            shape=shape,
            initializer=initializer,
            name=name,
            dtype="float32",
            autocast=False,
            trainable=trainable,
        )

    def _normal(self, stddev, offset):
        return keras.initializers.RandomNormal(stddev=stddev, seed=self._seed(offset))

    def _build_eigenvalues(self, size):
        """`nu_log`, `theta_log` and `gamma_log`: |lambda| and its phase as
        `eigenvalue_init` sets them, the input's normalisation."""
        if self.eigenvalue_init == "fourier":
            nu_log_init, theta_log_init = self._fourier_init()
        else:
            nu_log_init, theta_log_init = self._ring_init()
        trainable = self.train_eigenvalues
        self.nu_log = self._weight("nu_log", (size,), nu_log_init, trainable)
        self.theta_log = self._weight("theta_log", (size,), theta_log_init, trainable)
        nu_log = ops.convert_to_tensor(self.nu_log.value)

        def gamma_log_init(shape, dtype=None):
            return 0.5 * ops.log(1.0 - ops.exp(-2.0 * ops.exp(nu_log)))

        self.gamma_log = self._weight("gamma_log", (size,), gamma_log_init, trainable)

    def _ring_init(self):
        """|lambda| on the ring, its phase in (0, max_phase]."""
        r_min = _DEFAULT_R_MIN if self.r_min is None else self.r_min
        r_max = self._ring_max
        max_phase = _DEFAULT_MAX_PHASE if self.max_phase is None else self.max_phase
        uniform = keras.initializers.RandomUniform(0.0, 1.0, seed=self._seed(0))
        phases = keras.initializers.RandomUniform(0.0, 1.0, seed=self._seed(1))

        def nu_log_init(shape, dtype=None):
            squared = uniform(shape, "float32") * (r_max**2 - r_min**2) + r_min**2
            squared = ops.maximum(squared, _MIN_SQUARED_MODULUS)
            return ops.log(-0.5 * ops.log(squared))

        def theta_log_init(shape, dtype=None):
            # Phases of 0 would give log(0): drawn in (0, max_phase].
            return ops.log(max_phase * (1.0 - phases(shape, "float32")))

        return nu_log_init, theta_log_init

    def _fourier_init(self):
        """Every |lambda| = r_max, the phases pi * (n + 1/2) / N."""

        def nu_log_init(shape, dtype=None):
            return ops.full(shape, math.log(-math.log(self._ring_max)), "float32")

        def theta_log_init(shape, dtype=None):
            n = ops.arange(shape[0], dtype="float32")
            return ops.log(math.pi * (n + 0.5) / shape[0])

        return nu_log_init, theta_log_init

    def _recurrence_dtype(self):
        dtype = self.compute_dtype
        return "float32" if dtype in _LOW_PRECISION else dtype

    def call(self, inputs, states, training=False):
        dtype = self._recurrence_dtype()
        u = ops.cast(inputs, dtype)
        real, imaginary = (ops.cast(s, dtype) for s in states)
        lambda_re, lambda_im, gamma = self.eigenvalues()
        new_real, new_imaginary = self.recur(
            (lambda_re, lambda_im), (real, imaginary), self.inputs_to_state(u, gamma)
        )
        output = self.readout(new_real, new_imaginary, u)
        compute = self.compute_dtype
        return output, [ops.cast(new_real, compute), ops.cast(new_imaginary, compute)]

    def _read(self, weight):
        return ops.cast(weight.value, self._recurrence_dtype())

    def eigenvalues(self):
        """`(lambda_re, lambda_im, gamma)`, each `(state_dim,)`, in the
        recurrence's dtype: lambda = exp(-exp(nu_log)) * exp(i * exp(theta_log))."""
        log_modulus, phase = self.eigenvalues_polar()
        modulus = ops.exp(log_modulus)
        gamma = ops.exp(self._read(self.gamma_log))
        return modulus * ops.cos(phase), modulus * ops.sin(phase), gamma

    def eigenvalues_polar(self):
        """`(log |lambda|, arg lambda)`: `(-exp(nu_log), exp(theta_log))`."""
        return -ops.exp(self._read(self.nu_log)), ops.exp(self._read(self.theta_log))

    @staticmethod
    def recur(eigenvalues, state, drive):
        """One step of the recurrence, `x_t = lambda * x_{t-1} + b_t`, in
        real and imaginary parts: `eigenvalues` `(lambda_re, lambda_im)`,
        `state` `(Re x_{t-1}, Im x_{t-1})` and `drive` `(Re b_t, Im b_t)`
        (what `inputs_to_state` gives) make `(Re x_t, Im x_t)`."""
        lambda_re, lambda_im = eigenvalues
        real, imaginary = state
        input_re, input_im = drive
        return (
            lambda_re * real - lambda_im * imaginary + input_re,
            lambda_re * imaginary + lambda_im * real + input_im,
        )

    def inputs_to_state(self, u, gamma):
        """`gamma * (u @ B)` as its real and imaginary parts, for inputs `u`
        (`(..., input_dim)`, in the recurrence's dtype)."""
        return gamma * ops.matmul(u, self._read(self.B_re)), gamma * ops.matmul(
            u, self._read(self.B_im)
        )

    def readout(self, real, imaginary, u):
        """The output for states `x` (`real`, `imaginary`: `(..., state_dim)`)
        and inputs `u`, in the recurrence's dtype: `GLU(GELU(Re(x @ C) + u @ D))`,
        the nonlinear part in the compute dtype."""
        # The linear readout: y_t = Re(x_t @ C) + u_t @ D.
        y = (
            ops.matmul(real, self._read(self.C_re))
            - ops.matmul(imaginary, self._read(self.C_im))
            + ops.matmul(u, self._read(self.D))
        )

        # The nonlinear readout, in the compute dtype: GLU(GELU(y)).
        compute = self.compute_dtype

        def dense(z, kernel, bias):
            return ops.matmul(z, ops.cast(kernel.value, compute)) + ops.cast(bias.value, compute)

        z = keras.activations.gelu(ops.cast(y, compute))
        return dense(z, self.value_kernel, self.value_bias) * ops.sigmoid(
            dense(z, self.gate_kernel, self.gate_bias)
        )

    def _variables_in_file_order(self):
        """The weights in `_WEIGHT_ORDER`, trainable or not, then any a
        subclass adds: Keras's own order puts the trainable ones first, so
        that a cell with fixed eigenvalues would not read the files of one
        that trained them."""
        ordered = [getattr(self, name) for name in _WEIGHT_ORDER if hasattr(self, name)]
        own = self._trainable_variables + self._non_trainable_variables
        return ordered + [v for v in own if not any(v is o for o in ordered)]

    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables_in_file_order()):
            store[f"{i}"] = variable

    def load_own_variables(self, store):
        variables = self._variables_in_file_order()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables, but received "
                f"{len(store.keys())} variables during loading. "
                f"Expected: {[v.name for v in variables]}"
            )
        for i, variable in enumerate(variables):
            variable.assign(store[f"{i}"])

    def get_config(self):
        config = {
            "units": self.units,
            "state_dim": self.state_dim,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "max_timescale": self.max_timescale,
            "max_phase": self.max_phase,
            "seed": self.seed,
            "eigenvalue_init": self.eigenvalue_init,
            "train_eigenvalues": self.train_eigenvalues,
        }
        return {**super().get_config(), **config}


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_ring(r_min, r_max, max_timescale, max_phase):
    """Raises a `ValueError` for initialisation arguments out of range."""
    if not _is_number(r_min) or not 0 <= r_min < 1:
        raise _invalid("r_min", "a number in [0, 1)", r_min)
    if r_max is not None and max_timescale is not None:
        raise ValueError(
            "Arguments `r_max` and `max_timescale` both set the largest modulus of lambda; "
            f"give one of them, got r_max={r_max!r} and max_timescale={max_timescale!r}."
        )
    if r_max is not None and (not _is_number(r_max) or not r_min < r_max < 1):
        raise _invalid("r_max", f"a number in (r_min, 1) = ({r_min}, 1) or None", r_max)
    if max_timescale is not None:
        if not _is_number(max_timescale) or not max_timescale > 0:
            raise _invalid("max_timescale", "a positive number or None", max_timescale)
        if not r_min < _ring_max(None, max_timescale):
            shortest = f"-1 / log(r_min) = {-1 / math.log(r_min):.4g}" if r_min else "0"
            raise _invalid(
                "max_timescale",
                f"one above {shortest} steps, so that "
                f"r_max = exp(-1 / max_timescale) exceeds r_min={r_min}",
                max_timescale,
            )
    elif r_max is None and not r_min < 0.999:
        raise _invalid("r_min", "a number below the default r_max=0.999", r_min)
    if not _is_number(max_phase) or not 0 < max_phase <= 2 * math.pi + 1e-6:
        raise _invalid("max_phase", "a number in (0, 2 * pi]", max_phase)


def _check_eigenvalue_init(eigenvalue_init, r_min, max_phase):
    """Raises a `ValueError` for an unknown `eigenvalue_init`, or for the
    ring's arguments given with `"fourier"`, which does not read them."""
    if eigenvalue_init not in _EIGENVALUE_INITS:
        raise _invalid("eigenvalue_init", 'one of "ring" or "fourier"', eigenvalue_init)
    if eigenvalue_init == "fourier":
        for name, value in (("r_min", r_min), ("max_phase", max_phase)):
            if value is not None:
                raise _invalid(
                    name,
                    'None with eigenvalue_init="fourier" (every |lambda| is r_max, '
                    "the phases evenly spaced on (0, pi))",
                    value,
                )


def _ring_max(r_max, max_timescale):
    """The largest modulus of lambda at initialisation."""
    if max_timescale is not None:
        return math.exp(-1.0 / max_timescale)
    return 0.999 if r_max is None else r_max
