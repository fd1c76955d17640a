"""A seam for tests: fix where a layer's anchors' windows lie.

Anchors are drawn at random in every training step; a test that compares
the layer with a reference computed window by window, or two runs that
must see the same windows, fixes them here instead of reaching into the
layer.
"""

import numpy as np


def fix_window_starts(layer, starts):
    """Makes `layer` (an `AuxLossRNN`) use `starts` as its anchors' window
    starts in every training and evaluation call, instead of drawing them.

    Args:
        layer: The layer, built or not.
        starts: `(batch, num_anchors)` integer first steps of the windows
            (for reconstruction a window ends at its anchor, for prediction
            the anchor is its first step); or a function from the
            sequences' ends `(batch,)` (one past each sequence's last valid
            step) to them; or `None` to draw them at random again.
    """
    if starts is not None and not callable(starts):
        starts = np.asarray(starts, "int32")
    layer._fixed_window_starts = starts
