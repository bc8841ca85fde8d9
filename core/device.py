"""Devices and streams, as in mlx.core.

A Stream is an ordered queue of work on one device; every op takes
`stream=` (a Stream or a Device, meaning that device's default stream).
Nodes record their stream's index, so the engine knows where each kernel
belongs. This build has the CPU backend only: asking for the GPU raises an
error that says so, and the CUDA backend will slot in under native/cuda/
without changing this API.
"""
import contextlib
import enum
import threading


class DeviceType(enum.Enum):
    cpu = 0
    gpu = 1


cpu = DeviceType.cpu
gpu = DeviceType.gpu


class Device:
    """A device: a type and an index."""

    __slots__ = ("type", "index")

    def __init__(self, type: DeviceType, index: int = 0):
        self.type = type
        self.index = index

    def __repr__(self):
        return f"Device({self.type.name}, {self.index})"

    def __eq__(self, other):
        if isinstance(other, DeviceType):
            other = Device(other)
        return isinstance(other, Device) and (other.type, other.index) == (self.type, self.index)

    def __hash__(self):
        return hash((self.type, self.index))


class Stream:
    """An ordered queue of work on a device."""

    __slots__ = ("device", "index")

    def __init__(self, index: int, device: Device):
        self.index = index
        self.device = device

    def __repr__(self):
        return f"Stream({self.device!r}, {self.index})"

    def __eq__(self, other):
        return isinstance(other, Stream) and other.index == self.index

    def __hash__(self):
        return hash(("ember.Stream", self.index))


_lock = threading.Lock()
_streams = [Stream(0, Device(cpu, 0))]
_default_streams = {Device(cpu, 0): _streams[0]}
_state = threading.local()
_default_device = [Device(cpu, 0)]
# Fast path for resolve(None): the default stream's index while no
# `with stream(...)` block is open on any thread.
_default_index = [0]
_open_contexts = [0]


def is_available(device) -> bool:
    device = _as_device(device)
    return device.type is cpu


def _as_device(device) -> Device:
    if isinstance(device, DeviceType):
        return Device(device)
    if isinstance(device, Device):
        return device
    raise TypeError(f"expected a Device or DeviceType, got {type(device).__name__}")


def _check_available(device: Device):
    if device.type is gpu:
        raise ValueError("[device] this build of ember has no GPU backend; use ember.core.cpu")


def default_device() -> Device:
    return _default_device[0]


def set_default_device(device) -> None:
    device = _as_device(device)
    _check_available(device)
    _default_device[0] = device
    _default_index[0] = _default_streams[device].index


def default_stream(device) -> Stream:
    device = _as_device(device)
    _check_available(device)
    return _default_streams[device]


def set_default_stream(stream: Stream) -> None:
    _default_streams[stream.device] = stream
    _default_index[0] = _default_streams[_default_device[0]].index


def new_stream(device) -> Stream:
    device = _as_device(device)
    _check_available(device)
    with _lock:
        s = Stream(len(_streams), device)
        _streams.append(s)
    return s


def resolve(stream) -> int:
    """The engine's stream index for an op's `stream=` argument."""
    if stream is None:
        if not _open_contexts[0]:
            return _default_index[0]
        s = getattr(_state, "stream", None)
        return s.index if s is not None else _default_index[0]
    if isinstance(stream, Stream):
        return stream.index
    return default_stream(stream).index


@contextlib.contextmanager
def stream(s):
    """Runs the ops built inside the block on `s` (a Stream or a Device)."""
    if not isinstance(s, Stream):
        s = default_stream(s)
    previous = getattr(_state, "stream", None)
    _state.stream = s
    with _lock:
        _open_contexts[0] += 1
    try:
        yield s
    finally:
        _state.stream = previous
        with _lock:
            _open_contexts[0] -= 1


def synchronize(stream=None) -> None:
    """Waits for the work queued on a stream: evaluation is synchronous on the CPU."""
