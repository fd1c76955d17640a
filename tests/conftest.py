import atexit
import os
import shutil
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "jax":
    import jax

    # Eager calls compile their loops over time anew at each call (each call
    # traces new closures); XLA's compilation cache, keyed by the compiled
    # program, serves the repeats. Set before anything compiles; empty at
    # each run, as on a clean clone.
    _cache = tempfile.mkdtemp(prefix="keras_auxloss_tests_jax_cache_")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with a clean Keras session, seeded. Without Python's
    garbage collection (`free_memory=False`): it was seconds per test after
    the larger ones, and nothing here depends on it."""
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")
