"""Ranking losses: the cost of the ranking item scores induce against relevance labels.

They work on the last axis; leading axes are lists in a batch.
"""
import ember.core as em

from ._checks import as_array, check_floating, log_softmax, masked_sum


def _safe_reduce(a, where=None, reduce_fn=None):
    """Reduce per-list losses `a` with `reduce_fn`, honouring the list mask `where`.

    em.mean and em.sum are applied to the kept lists only; a mean over no list gives 0
    (not nan) unless `a` itself holds nan. Other callables get `where=` when a mask is
    given. With `reduce_fn=None` the masked lists are set to 0.
    """
    if reduce_fn is None:
        return a if where is None else em.where(where, a, 0.0)
    if reduce_fn is em.mean:
        if where is None:
            output = em.mean(a)
        else:
            output = masked_sum(a, where=where) / em.sum(em.asarray(where).astype(a.dtype))
        input_is_valid = em.logical_not(em.any(em.isnan(a)))
        return em.where(em.isnan(output) & input_is_valid, 0.0, output)
    if reduce_fn is em.sum:
        return masked_sum(a, where=where)
    return reduce_fn(a) if where is None else reduce_fn(a, where=where)


def ranking_softmax_loss(logits, labels, *, where=None, weights=None, reduce_fn=em.mean):
    """Softmax (listwise) ranking loss:

        loss = -sum_i y_i log softmax(s)_i

    over the last axis, with y the (optionally `weights`-scaled) relevance labels.
    Items with `where` false are left out of the softmax and the sum.
    """
    logits = as_array(logits)
    check_floating("ranking_softmax_loss", "logits", logits)
    labels = as_array(labels).astype(logits.dtype)
    if where is not None:
        labels = em.where(where, labels, 0.0)
        logits = em.where(where, logits, -float("inf"))
    if weights is not None:
        labels = labels * weights
    loss = -masked_sum(labels * log_softmax(logits, -1), axis=-1, where=where)
    if where is not None:
        where = em.any(where, axis=-1)
    return _safe_reduce(loss, where=where, reduce_fn=reduce_fn)
