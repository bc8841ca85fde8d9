"""Memory counters and limits of the engine's caching allocator (mlx.core names).

Active memory is held by live arrays; cache memory is freed buffers kept for
reuse. Allocating past the memory limit raises MemoryError.
"""
from ._ffi import lib


def get_active_memory() -> int:
    """Bytes held by live arrays (rounded up to the allocator's size classes)."""
    return lib.em_get_active_memory()


def get_peak_memory() -> int:
    """The highest active memory since the start or the last reset."""
    return lib.em_get_peak_memory()


def reset_peak_memory() -> None:
    """Sets the peak to the current active memory."""
    lib.em_reset_peak_memory()


def get_cache_memory() -> int:
    """Bytes of freed buffers kept for reuse."""
    return lib.em_get_cache_memory()


def set_memory_limit(limit: int) -> int:
    """Sets the most memory arrays may hold; returns the previous limit."""
    if limit < 0:
        raise ValueError(f"[set_memory_limit] limit must be non-negative, got {limit}")
    return lib.em_set_memory_limit(limit)


def set_cache_limit(limit: int) -> int:
    """Sets the most memory the cache may keep; returns the previous limit."""
    if limit < 0:
        raise ValueError(f"[set_cache_limit] limit must be non-negative, got {limit}")
    return lib.em_set_cache_limit(limit)


def clear_cache() -> None:
    """Returns every cached buffer to the system."""
    lib.em_clear_cache()
