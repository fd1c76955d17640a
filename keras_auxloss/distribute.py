"""`model.fit` under `tf.distribute.MultiWorkerMirroredStrategy`.

With Keras 3.15 and TensorFlow 2.21, `fit` fails under this strategy for any
model, a single `Dense` layer included, in two places of Keras's TensorFlow
trainer (`keras/src/backend/tensorflow/trainer.py`):

1. Before the first step, `_maybe_symbolic_build` reduces a first batch
   with `strategy.reduce("MEAN", (x, y), axis=None)`: a tuple. The mirrored
   strategy maps a reduction over a nest, the multi-worker one does not
   (`CollectiveAllReduceExtended` hands the whole tuple to one collective),
   and it fails converting the per-replica tuple to a tensor
   (keras-team/keras#20585).
2. After each step, the logs, scalars, are reduced with `axis=0`, which the
   multi-worker strategy rejects for rank-0 values ("Invalid reduction
   dimension 0"; tensorflow/tensorflow#72388).

`fix_multi_worker_fit(strategy)` makes this one strategy's `reduce` do what
Keras expects: map over nests, and reduce a scalar with `axis=None` (a
scalar has no axis to sum over: the reduction across replicas is the same).
Nothing else changes. Only the package's users who call it are affected.
"""

import tensorflow as tf


def fix_multi_worker_fit(strategy):
    """Lets `model.fit` run under `strategy`, a
    `tf.distribute.MultiWorkerMirroredStrategy`; returns it.

    Call it right after creating the strategy, before building the model::

        strategy = keras_auxloss.distribute.fix_multi_worker_fit(
            tf.distribute.MultiWorkerMirroredStrategy())
        with strategy.scope():
            model = build_model()
            model.compile(...)
        model.fit(dataset)

    Other strategies are returned unchanged: they need no fix.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy
    reduce = strategy.reduce

    def reduce_nest(reduce_op, value, axis=None):
        def reduce_one(one):
            rank = strategy.experimental_local_results(one)[0].shape.rank
            return reduce(reduce_op, one, axis=None if rank == 0 else axis)

        return tf.nest.map_structure(reduce_one, value)

    strategy.reduce = reduce_nest
    return strategy
