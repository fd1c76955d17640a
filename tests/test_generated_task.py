"""The generated task: its evidence ends `gap` steps before the end."""

import numpy as np
import pytest

from examples import generated_task


def test_evidence_before_the_gap_and_blanks_after():
    tokens, labels = generated_task.generate(50, length=120, gap=20, seed=3)
    assert tokens.shape == (50, 120) and tokens.dtype == np.int32
    assert labels.shape == (50,) and set(labels) <= set(range(generated_task.NUM_CLASSES))
    assert np.all(tokens[:, 100:] == generated_task.BLANK)
    # Every token before the gap belongs to its label's group.
    groups = (tokens[:, :100] - 1) // generated_task.GROUP_SIZE
    np.testing.assert_array_equal(groups, np.repeat(labels[:, None], 100, axis=1))
    assert tokens.max() < generated_task.VOCAB_SIZE
    assert len(set(labels)) == generated_task.NUM_CLASSES


def test_seed_fixes_the_data():
    first, second = generated_task.generate(5, seed=1), generated_task.generate(5, seed=1)
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], generated_task.generate(5, seed=2)[0])


@pytest.mark.parametrize("gap", [-1, 300])
def test_gap_must_leave_evidence(gap):
    with pytest.raises(ValueError, match=f"Received gap={gap} with length=300"):
        generated_task.generate(2, gap=gap)
