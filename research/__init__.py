"""Research tools: scripts that look inside the method's training, apart
from the examples of its use. Each folder is a package run from the
repository's root (`python -m research.<folder>.<module>`), with a README.

- `mnist5k_diagnosis`: the r-LSTM's training on mnist5k recorded step by
  step, behind `docs/results.md`'s "Why the r-LSTM's accuracy dips".
"""
