"""The benchmark of a training step, run from the repository's root as
`python -m benchmarks.train_step`; `flops` counts each step's matrix
products (`python -m benchmarks.flops` prints the r-LSTM's).
"""
