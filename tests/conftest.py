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


def _memory_map_limit() -> int | None:
    """Linux's limit of memory maps a process may hold (`vm.max_map_count`,
    65,530 by default); None where there is no such limit to watch. Each
    program XLA compiles for the CPU maps its code; a process that compiles
    thousands (the JAX suite's eager calls) reaches the limit, and XLA then
    crashes the process in its compiler (a segmentation fault, or a hang)
    instead of raising."""
    try:
        with open("/proc/sys/vm/max_map_count") as file:
            return int(file.read())
    except OSError:
        return None


_MEMORY_MAP_LIMIT = _memory_map_limit()


def _memory_maps_nearly_spent() -> bool:
    """Whether this process holds more than half its memory maps."""
    if _MEMORY_MAP_LIMIT is None:
        return False
    with open("/proc/self/maps") as file:
        return sum(1 for _ in file) > _MEMORY_MAP_LIMIT // 2


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with a clean Keras session, seeded. Without Python's
    garbage collection (`free_memory=False`): it was seconds per test after
    the larger ones, and nothing here depends on it. On JAX, when the
    process nears its limit of memory maps, JAX's caches of compiled
    programs are emptied and collected, which unmaps their code."""
    nearly_spent = keras.backend.backend() == "jax" and _memory_maps_nearly_spent()
    if nearly_spent:
        jax.clear_caches()
    keras.backend.clear_session(free_memory=nearly_spent)
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")
