"""The method forms of ops on `array` (a.sum(axis=...), a.reshape(...), ...),
as mlx.core's array has them. Each forwards to the function of the same name."""
from . import elementwise as ew
from . import manipulation as mp
from . import reductions as rd
from .array import array
from .bitcast import view


def _forward(fn, name):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = fn.__doc__
    return method


_FORWARDED = {
    ew: ["abs", "cos", "exp", "log", "log1p", "log2", "log10", "reciprocal", "round", "rsqrt",
         "sin", "sqrt", "square", "conj", "conjugate"],
    rd: ["all", "any", "argmax", "argmin", "cummax", "cummin", "cumprod", "cumsum",
         "logcumsumexp", "logsumexp", "max", "mean", "min", "prod", "std", "sum", "var"],
    mp: ["diag", "diagonal", "flatten", "moveaxis", "squeeze", "swapaxes", "split", "unflatten"],
}

for _module, _names in _FORWARDED.items():
    for _name in _names:
        setattr(array, _name, _forward(getattr(_module, _name), _name))


def _reshape(self, *shape, stream=None):
    """a.reshape(2, 3) or a.reshape((2, 3))."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return mp.reshape(self, shape, stream=stream)


def _transpose(self, *axes, stream=None):
    """a.transpose(), a.transpose(1, 0) or a.transpose((1, 0))."""
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = axes[0]
    return mp.transpose(self, axes or None, stream=stream)


def _view(self, dtype, *, stream=None):
    """The same bytes read as another dtype (see ember.core.view)."""
    return view(self, dtype, stream=stream)


array.reshape = _reshape
array.transpose = _transpose
array.view = _view
