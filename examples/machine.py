"""What a figure was measured on: the CPU (`cpu_model`, from
`/proc/cpuinfo`) and, where there is one, the GPU and its peak memory
(`gpu_peak_gib`), as `compare.py` and the benchmark report them."""

import os
import platform


def cpu_model() -> str:
    """The CPU's model name and its vector extensions (AVX2, AVX-512, AMX)."""
    name, extensions = platform.processor() or "unknown", []
    try:
        with open("/proc/cpuinfo") as file:
            info = file.read()
    except OSError:
        return name
    for line in info.splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags_ = line.split(":", 1)[1].split()
            extensions = [e for e in ("avx2", "avx512f", "amx_tile") if e in flags_]
            break
    return f"{name} ({', '.join(extensions)}, {os.cpu_count()} cores)"


def gpu_peak_gib() -> float | None:
    """The peak memory this process has taken on its first GPU, in GiB, as
    the Keras backend it runs reports it; `None` without a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return torch.cuda.max_memory_allocated() / 2**30
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "gpu":
            return None
        return device.memory_stats()["peak_bytes_in_use"] / 2**30
    return None
