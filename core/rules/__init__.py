"""Transform rules (jvp, vjp, vmap) of the foundation's primitives, one
registry entry per primitive, grouped as the kernels are (native/kernels/):
elementwise (unary, binary, where), layout (copies, views, shapes), reduce
(reductions, arg-reductions, scans), index (take, scatter) and products.
Primitives added later register their rules beside their own ops."""
from . import elementwise, index, layout, products, reduce  # noqa: F401
