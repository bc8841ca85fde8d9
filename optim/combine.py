"""Composing transformations: in sequence (chain, named_chain) or side by side on
labelled parts of the params (partition, alias multi_transform)."""
import collections
from typing import Any, Callable, Hashable, Mapping, NamedTuple, Union

from . import base
from ._trees import tree_leaves, tree_map


def chain(*args: base.GradientTransformation) -> base.GradientTransformationExtraArgs:
    """The transformations applied one after the other; the state is the tuple of
    their states. Extra keyword arguments to update reach every one of them."""
    transforms = [base.with_extra_args_support(t) for t in args]

    def init_fn(params):
        return tuple(t.init(params) for t in transforms)

    def update_fn(updates, state, params=None, **extra_args):
        if len(transforms) != len(state):
            raise ValueError("The number of updates and states has to be the same in chain! "
                             f"Make sure you have called init first! ({len(transforms)} "
                             f"transformations, a state of {len(state)})")
        new_state = []
        for s, t in zip(state, transforms):
            updates, new_s = t.update(updates, s, params, **extra_args)
            new_state.append(new_s)
        return updates, tuple(new_state)

    return base.GradientTransformationExtraArgs(init_fn, update_fn)


def named_chain(*args: tuple) -> base.GradientTransformationExtraArgs:
    """chain, with the state an OrderedDict keyed by the given names."""
    names = [name for name, _ in args]
    if len(names) != len(set(names)):
        raise ValueError(f"Named transformations must have unique names, but got {names}")
    transforms = [(name, base.with_extra_args_support(t)) for name, t in args]

    def init_fn(params):
        return collections.OrderedDict((name, t.init(params)) for name, t in transforms)

    def update_fn(updates, state, params=None, **extra_args):
        new_state = collections.OrderedDict()
        for name, t in transforms:
            updates, new_state[name] = t.update(updates, state[name], params, **extra_args)
        return updates, new_state

    return base.GradientTransformationExtraArgs(init_fn, update_fn)


class PartitionState(NamedTuple):
    """The state of each group's transformation, by label."""
    inner_states: Mapping[Hashable, base.OptState]


def partition(transforms: Mapping[Hashable, base.GradientTransformation],
              param_labels: Union[Any, Callable[[Any], Any]], *,
              mask_compatible_extra_args: bool = False) -> base.GradientTransformationExtraArgs:
    """Different transformations for different parts of the params.

    param_labels gives each param a label (a key of transforms): a tree of labels
    like the params, a prefix of that tree (one label for a whole subtree), or a
    function of the params returning one. Each transformation sees only its group
    (the others masked out, through optim.masked)."""
    from .wrappers import masked  # wrappers builds on base; keep the import one way
    transforms = {k: base.with_extra_args_support(v) for k, v in transforms.items()}

    def make_mask(labels, group):
        return tree_map(lambda label: label == group, labels)

    def labels_for(tree):
        return param_labels(tree) if callable(param_labels) else param_labels

    def init_fn(params):
        labels = labels_for(params)
        label_set = set(tree_leaves(labels))
        if not label_set.issubset(transforms.keys()):
            raise ValueError("Some parameters have no corresponding transformation.\n"
                             f"Parameter labels: {sorted(map(str, label_set))} \n"
                             f"Transforms keys: {sorted(map(str, transforms.keys()))} \n")
        return PartitionState({
            group: masked(tx, make_mask(labels, group),
                          mask_compatible_extra_args=mask_compatible_extra_args).init(params)
            for group, tx in transforms.items()})

    def update_fn(updates, state, params=None, **extra_args):
        labels = labels_for(updates)
        new_inner_state = {}
        for group, tx in transforms.items():
            masked_tx = masked(tx, make_mask(labels, group),
                               mask_compatible_extra_args=mask_compatible_extra_args)
            updates, new_inner_state[group] = masked_tx.update(
                updates, state.inner_states[group], params, **extra_args)
        return updates, PartitionState(new_inner_state)

    return base.GradientTransformationExtraArgs(init_fn, update_fn)


multi_transform = partition  # optax's older name
MultiTransformState = PartitionState
