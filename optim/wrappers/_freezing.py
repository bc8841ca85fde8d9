"""Freezing parameters: their updates become zero."""
from .. import base
from .._trees import tree_map
from ._masking import masked


def freeze(mask) -> base.GradientTransformation:
    """Zero updates where `mask` is true (a tree of booleans, a prefix of one, or a bool);
    the other updates pass through unchanged. Chain it with an optimizer:

        optim.chain(optim.adam(1e-3), optim.freeze({"encoder": True, "head": False}))
    """
    return masked(base.set_to_zero(), mask)


def selective_transform(optimizer: base.GradientTransformation, *,
                        freeze_mask) -> base.GradientTransformation:
    """`optimizer` on the params where `freeze_mask` is false, zero updates elsewhere.

    Unlike chaining `freeze`, the optimizer never sees the frozen params, so it keeps
    no state for them.
    """
    from ..combine import partition  # combine imports wrappers; keep the cycle lazy

    def label_fn(params):
        del params
        return tree_map(lambda frozen: "freeze" if frozen else "train", freeze_mask)

    return partition({"train": optimizer, "freeze": base.set_to_zero()}, param_labels=label_fn)
