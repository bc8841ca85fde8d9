"""The Python half of the primitive registry: each primitive's transform rules.

A primitive is one engine node kind (`lib.EM_P_*`); its C half (shape rule and
kernel) lives in native/prims.c and native/kernels/. Its Python half is one
`Rules` entry here, holding the three rules every transform is built from:

    jvp(node, tangents)       -> tangent of node's output
        tangents: one entry per node input, an array of the input's shape, or
        None where the input's tangent is zero.
    vjp(node, cotangent)      -> list with one entry per node input: its
        cotangent (an array of the input's shape and dtype), or None where
        the input is not differentiable or receives nothing.
    vmap(node, inputs, axes)  -> (output, out_axis)
        inputs: the node's inputs with a batch axis added; axes: for each
        input the position of its batch axis, or None where it has none (at
        least one is not None). out_axis: where the batch axis is in output
        (None if the output does not depend on it).

Rules are written with ember.core ops, never with numpy, so the arrays they
build are ordinary lazy graph nodes: rules compose, and grad(grad(f)),
vmap(grad(f)) and compile(grad(f)) need nothing more.

`Node` is the read-only view of a graph node that rules receive. Rules for a
family of ops live beside the ops (core/elementwise.py registers the unary and
binary rules, core/fft.py the FFT's, ...): one registry, one entry per
primitive, each next to the Python op that builds it.
"""
from dataclasses import dataclass
from typing import Callable, Optional

from ._ffi import ffi, lib


@dataclass(frozen=True)
class Rules:
    name: str
    jvp: Callable
    vjp: Callable
    vmap: Callable


_REGISTRY: dict = {}


def register(prim: int, *, jvp: Callable, vjp: Callable, vmap: Callable) -> None:
    """Registers the transform rules of primitive `prim` (an `lib.EM_P_*`)."""
    if prim in _REGISTRY:
        raise ValueError(f"[register] primitive {lib_name(prim)} already has rules")
    _REGISTRY[prim] = Rules(lib_name(prim), jvp, vjp, vmap)


def rules_of(prim: int) -> Rules:
    try:
        return _REGISTRY[prim]
    except KeyError:
        raise NotImplementedError(
            f"primitive {lib_name(prim)} has no transform rules registered") from None


def registered() -> dict:
    """A copy of the registry: primitive number -> Rules."""
    return dict(_REGISTRY)


def lib_name(prim: int) -> str:
    return ffi.string(lib.em_prim_name(prim)).decode()


class Node:
    """A graph node as transform rules see it: primitive, inputs, parameters, output.

    `inputs` and `out` are ordinary arrays (new references); `ip` and `fp` the
    primitive's integer and float parameters (their meaning per primitive is
    documented at the top of native/prims.c)."""

    __slots__ = ("prim", "inputs", "ip", "fp", "out")

    def __init__(self, prim: int, inputs: list, ip: tuple, fp: tuple, out):
        self.prim = prim
        self.inputs = inputs
        self.ip = ip
        self.fp = fp
        self.out = out

    @property
    def name(self) -> str:
        return lib_name(self.prim)

    def __repr__(self) -> str:
        shapes = ", ".join(str(x.shape) for x in self.inputs)
        return f"Node({self.name}, inputs=[{shapes}], ip={self.ip}, fp={self.fp})"


def zero_cotangents(node: Node, cotangent) -> list:
    """vjp of a primitive whose output does not depend differentiably on any input."""
    return [None] * len(node.inputs)


def zero_tangent(node: Node, tangents) -> Optional[object]:
    """jvp of a primitive whose output is piecewise constant in its inputs."""
    return None
