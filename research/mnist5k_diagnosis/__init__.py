"""The r-LSTM's training on mnist5k, step by step (see this folder's README).

Run from the repository's root, as `python -m
research.mnist5k_diagnosis.diagnose_mnist5k`:

- `diagnose_mnist5k`: one run, every step's records written out;
- `digits`: the run's data, mnist5k's training digits and a validation
  split of its own;
- `measures`: the training step with its measurements, the
  full-backpropagation probe and the validation;
- `summarize`, `spikes`, `probes`: tables from the runs' records;
- `plot_collapse`: one run's per-step records around some epochs, drawn;
- `export`: a compact JSON of every run in a directory.
"""
