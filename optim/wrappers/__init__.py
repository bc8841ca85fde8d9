"""Wrappers: transformations that change when, where or on what another one runs.

Accumulation (MultiSteps, apply_every), conditions (apply_if_finite,
conditionally_mask, conditionally_transform), masking and freezing (masked, freeze,
selective_transform), layout (flatten) and lookahead, as in optax. Where optax uses
`jax.lax.cond`, both outcomes are computed and chosen with em.where, so every
wrapper runs eagerly and under tracing alike.
"""
from ._accumulation import (ApplyEvery, MultiSteps, MultiStepsState, apply_every,
                            skip_large_updates, skip_not_finite)
from ._conditionality import (ApplyIfFiniteState, ConditionallyMaskState,
                              ConditionallyTransformState, apply_if_finite, conditionally_mask,
                              conditionally_transform)
from ._freezing import freeze, selective_transform
from ._layouts import flatten
from ._lookahead import LookaheadParams, LookaheadState, lookahead
from ._masking import MaskedNode, MaskedState, masked
