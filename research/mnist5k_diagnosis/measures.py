"""What the diagnosis measures: the training step with its measurements,
the full-backpropagation probe, and validation.

The network is `examples.experiment.build_model`'s: an `AuxLossLSTM`, then
Dense(256, relu), Dropout(0.5) and the logits. Its variables fall in
`GROUPS`: the main LSTM with its embedding (`main`), the reconstruction
decoder (`decoder`), the auxiliary head (`aux_head`) and the classifier.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_auxloss import AuxLossLSTM

GROUPS = ("main", "decoder", "aux_head", "classifier")


def group_of(path):
    """The group of `GROUPS` of the variable at `path`."""
    if path.startswith("aux_loss_lstm/"):
        name = path.split("/")[1]
        if name in ("embedding", "cell"):
            return "main"
        if name.startswith("decoder_cell"):
            return "decoder"
        if name.startswith("head_"):
            return "aux_head"
        raise ValueError(path)
    return "classifier"


def dense(gradient, variable):
    """`gradient` as a dense tensor, zeros where there is none."""
    if gradient is None:
        return tf.zeros_like(variable)
    return tf.convert_to_tensor(gradient)


def norms(gradients, groups):
    """Global norm and the norm of each group."""
    squares = {g: tf.constant(0.0) for g in GROUPS}
    for gradient, group in zip(gradients, groups):
        squares[group] += tf.reduce_sum(tf.square(gradient))
    out = {g: tf.sqrt(s) for g, s in squares.items()}
    out["global"] = tf.sqrt(tf.add_n(list(squares.values())))
    return out


def probe_model(model):
    """`(layer, dense_hidden, probe)`: the model's `AuxLossLSTM`, its first
    Dense (the classifier's hidden layer) and a model of the same layers
    that returns the LSTM's features, the hidden layer's output and the
    logits."""
    layer = next(layer for layer in model.layers if isinstance(layer, AuxLossLSTM))
    dense_hidden = next(
        candidate for candidate in model.layers if isinstance(candidate, keras.layers.Dense)
    )
    probe = keras.Model(model.inputs, [layer.output, dense_hidden.output, model.output])
    return layer, dense_hidden, probe


def output_stats(features, hidden, logits, y):
    """The classifier's output on a batch: accuracy, the spread of its
    logits, the entropy of its predictions, the fraction given the most
    frequent class, its dead ReLUs, and how saturated the LSTM's features are."""
    logits = tf.cast(logits, tf.float32)
    probs = tf.nn.softmax(logits)
    predicted = tf.argmax(logits, -1, output_type=tf.int32)
    counts = tf.math.bincount(predicted, minlength=10, maxlength=10)
    return {
        "acc": tf.reduce_mean(tf.cast(predicted == y, tf.float32)),
        "logit_std": tf.reduce_mean(tf.math.reduce_std(logits, -1)),
        "logit_maxabs": tf.reduce_max(tf.abs(logits)),
        "entropy": tf.reduce_mean(-tf.reduce_sum(probs * tf.math.log(probs + 1e-12), -1)),
        "top_class_fraction": tf.cast(tf.reduce_max(counts), tf.float32)
        / tf.cast(tf.shape(y)[0], tf.float32),
        "dead_relu": tf.reduce_mean(tf.cast(tf.reduce_max(hidden, 0) <= 0.0, tf.float32)),
        "h_absmean": tf.reduce_mean(tf.abs(features)),
        "h_saturated": tf.reduce_mean(tf.cast(tf.abs(features) > 0.95, tf.float32)),
    }


def make_step(probe, optimizer, variables, joint, aux_weight):
    """One training step of `probe`'s layers, as a `tf.function` of a batch
    that returns its records.

    It computes the total gradient and the supervised one (none in
    pretraining, `joint` False), takes `g_aux = g_total - g_sup`, and
    applies the total, as `fit` would. The records: both losses (the
    auxiliary one unweighted), the norm of each gradient on each group and
    on each variable, their cosine on the main LSTM, the update's norm on
    each group, `output_stats` and the learning rate.
    """
    groups = [group_of(v.path) for v in variables]

    @tf.function
    def step(x, y):
        before = [tf.identity(v) for v in variables]
        with tf.GradientTape(persistent=True) as tape:
            features, hidden, logits = probe(x, training=True)
            aux = tf.add_n(probe.losses) if probe.losses else tf.constant(0.0)
            sup = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
            )
            total = (sup if joint else 0.0) + aux
        g_total = [dense(g, v) for g, v in zip(tape.gradient(total, variables), variables)]
        if joint:
            g_sup = [dense(g, v) for g, v in zip(tape.gradient(sup, variables), variables)]
        else:
            g_sup = [tf.zeros_like(v) for v in variables]
        del tape
        g_aux = [t - s for t, s in zip(g_total, g_sup)]
        optimizer.apply(g_total, variables)
        out = {"sup_loss": sup, "aux_loss": aux / aux_weight if aux_weight else aux}
        for name, gradients in (("total", g_total), ("sup", g_sup), ("aux", g_aux)):
            for group, value in norms(gradients, groups).items():
                out[f"g_{name}_{group}"] = value
        for name, gradients in (("sup", g_sup), ("aux", g_aux)):
            for v, g in zip(variables, gradients):  # Per variable, before clipping.
                out[f"gv_{name}/{v.path}"] = tf.norm(g)
        # Cosine between the supervised and auxiliary gradients on the main LSTM.
        main = [i for i, g in enumerate(groups) if g == "main"]
        dot = tf.add_n([tf.reduce_sum(g_sup[i] * g_aux[i]) for i in main])
        out["cos_sup_aux_main"] = dot / (out["g_sup_main"] * out["g_aux_main"] + 1e-12)
        updates = [v - b for v, b in zip(variables, before)]
        for group, value in norms(updates, groups).items():
            out[f"update_{group}"] = value
        out.update(output_stats(features, hidden, logits, y))
        out["lr"] = tf.cast(optimizer.learning_rate, tf.float32)
        return out

    return step


def _cosine(a, b):
    return tf.reduce_sum(a * b) / (tf.norm(a) * tf.norm(b) + 1e-12)


def make_full_bp_probe(model, layer, dense_hidden):
    """The truncated and the full supervised gradient on the main LSTM, on
    the same batch, the classifier without dropout (the layer's values are
    the same in both calls; only the gradient path differs): a
    `tf.function` of a batch that returns how they compare."""
    logits_layer = model.layers[-1]
    main_variables = [v for v in model.trainable_weights if group_of(v.path) == "main"]

    def head(features):
        return logits_layer(dense_hidden(features))

    def gradients(loss, tape):
        return [dense(g, v) for g, v in zip(tape.gradient(loss, main_variables), main_variables)]

    @tf.function
    def full_bp_probe(x, y):
        with tf.GradientTape(persistent=True) as tape:
            truncated = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    y, head(layer(x, training=True)), from_logits=True
                )
            )
            full = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    y, head(layer(x, training=False)), from_logits=True
                )
            )
        g_tr, g_full = gradients(truncated, tape), gradients(full, tape)
        del tape
        flat_tr = tf.concat([tf.reshape(g, [-1]) for g in g_tr], 0)
        flat_full = tf.concat([tf.reshape(g, [-1]) for g in g_full], 0)
        flat_early = flat_full - flat_tr  # The part from the steps before the window.
        out = {
            "norm_truncated": tf.norm(flat_tr),
            "norm_full": tf.norm(flat_full),
            "norm_early": tf.norm(flat_early),
            "cos_truncated_full": _cosine(flat_tr, flat_full),
            "cos_truncated_early": _cosine(flat_tr, flat_early),
            "loss": full,
        }
        for v, a, b in zip(main_variables, g_tr, g_full):
            out[f"cos_{v.path.split('/')[-1]}"] = _cosine(a, b)
        return out

    return full_bp_probe


class Validator:
    """`output_stats` and the loss on the validation digits, the model
    in inference mode: `validator()`, or `validator.with_moving_average`."""

    def __init__(self, probe, x_val, y_val):
        self.x_val, self.y_val = x_val, y_val

        @tf.function
        def evaluate(x):
            return probe(x, training=False)

        self.evaluate = evaluate

    def __call__(self):
        features, hidden, logits = self.evaluate(self.x_val)
        stats = output_stats(features, hidden, logits, self.y_val)
        stats = {k: float(v) for k, v in stats.items()}
        loss = keras.losses.sparse_categorical_crossentropy(self.y_val, logits, from_logits=True)
        stats["loss"] = float(np.mean(loss))
        return stats

    def with_moving_average(self, optimizer, variables):
        """Validation with the optimizer's moving averages in place of the weights."""
        saved = [v.numpy() for v in variables]
        for v, average in zip(variables, optimizer._model_variables_moving_average):
            v.assign(average)
        stats = self()
        for v, value in zip(variables, saved):
            v.assign(value)
        return stats
