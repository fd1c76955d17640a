"""The examples: command lines over modules split by concern, as in flax's
examples. Run them from the repository's root, as `python -m examples.train`.

Command lines:

- `demo`: `make demo`, the method's claim on real MNIST digits or on the
  generated task, in minutes on a CPU;
- `train`: one run of the paper's experiments (`--helpfull` lists its flags);
- `stream`: one stream of a million steps trained in chunks;
- `compare`: one run of the package's layers beside their peers on mnist5k;
- `compare_report`: the table and plot of `compare`'s results.

Modules:

- `config`: `Config`, the settings of one run, and their flags;
- `input_pipeline`: one loader per data set, the splits, and batching;
- `experiment`: the paper's network, its two training phases and outputs;
- `presets`: the demo's models, and each task's settings and default models;
- `generated_task`: the generated task;
- `plots`: every figure;
- `resident_memory`: a process's resident memory.

Nothing is imported here: `benchmarks.train_step`'s worker processes, whose
memory is measured, import `examples.resident_memory` alone.
"""
