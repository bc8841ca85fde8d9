"""DLPack exchange: `from_dlpack` takes any producer (numpy, PyTorch, JAX)."""
import numpy as np

from .array import array


def from_dlpack(x) -> array:
    """An ember array holding the data of a DLPack producer (copied once)."""
    return array(np.from_dlpack(x))
