"""ember.optim.losses against optax.losses (and mlx.nn.losses formulas written with numpy/torch).

Every Optax loss runs on the same random inputs in float32 (rtol 1e-6) and float64
(jax_enable_x64, rtol 1e-12).
"""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torch.nn.functional as F

import ember.core as em
from ember.optim import losses
from ember.optim.losses import nn as mlx_losses


@pytest.fixture(params=["float32", "float64"])
def precision(request):
    """(numpy dtype, rtol, atol) for the run; float64 turns on jax_enable_x64 meanwhile."""
    if request.param == "float32":
        yield np.float32, 1e-6, 1e-6
        return
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield np.float64, 1e-12, 1e-12
    jax.config.update("jax_enable_x64", previous)


def _convert(value, to):
    if isinstance(value, np.ndarray):
        return em.array(value) if to == "ember" else jnp.asarray(value)
    if isinstance(value, tuple):
        return tuple(_convert(v, to) for v in value)
    return value


def check(ours, theirs, precision, *args, **kwargs):
    """ours(*args) in ember equals theirs(*args) in JAX within the precision's tolerance."""
    _, rtol, atol = precision
    expected = theirs(*_convert(args, "jax"), **{k: _convert(v, "jax") for k, v in kwargs.items()})
    got = ours(*_convert(args, "ember"), **{k: _convert(v, "ember") for k, v in kwargs.items()})
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    scale = max(1.0, float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0)))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol * scale)


def normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def probabilities(rng, shape, dtype):
    p = rng.uniform(size=shape) ** 2
    return (p / p.sum(-1, keepdims=True)).astype(dtype)


def test_sigmoid_losses(rng, precision):
    dtype = precision[0]
    logits = normal(rng, (5, 7), dtype, scale=4)
    soft = rng.uniform(size=(5, 7)).astype(dtype)
    hard = rng.integers(0, 2, size=(5, 7)).astype(dtype)
    for labels in (soft, hard):
        check(losses.sigmoid_binary_cross_entropy, optax.losses.sigmoid_binary_cross_entropy,
              precision, logits, labels)
        check(losses.sigmoid_focal_loss, optax.losses.sigmoid_focal_loss, precision,
              logits, labels, gamma=float(rng.uniform(0.5, 3)))
        check(losses.sigmoid_focal_loss, optax.losses.sigmoid_focal_loss, precision,
              logits, labels, alpha=0.25)


def test_softmax_cross_entropy(rng, precision):
    dtype = precision[0]
    logits = normal(rng, (4, 3, 9), dtype, scale=3)
    check(losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy, precision,
          logits, probabilities(rng, (4, 3, 9), dtype))
    labels0 = np.moveaxis(probabilities(rng, (3, 9, 4), dtype), -1, 0).copy()
    check(losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy, precision,
          logits, labels0, axis=0)
    where = rng.uniform(size=(4, 3, 9)) > 0.3
    check(losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy, precision,
          logits, probabilities(rng, (4, 3, 9), dtype), where=where)
    check(losses.poly_loss_cross_entropy, optax.losses.poly_loss_cross_entropy, precision,
          logits, probabilities(rng, (4, 3, 9), dtype), epsilon=float(rng.uniform(-1, 3)))
    check(losses.poly_loss_cross_entropy, optax.losses.poly_loss_cross_entropy, precision,
          logits, probabilities(rng, (4, 3, 9), dtype), where=where)


def test_softmax_cross_entropy_with_integer_labels(rng, precision):
    dtype = precision[0]
    ours, theirs = (losses.softmax_cross_entropy_with_integer_labels,
                    optax.losses.softmax_cross_entropy_with_integer_labels)
    logits = normal(rng, (6, 11), dtype, scale=3)
    labels = rng.integers(0, 11, size=6).astype(np.int32)
    check(ours, theirs, precision, logits, labels)
    logits3 = normal(rng, (4, 5, 6), dtype)
    check(ours, theirs, precision, logits3, rng.integers(0, 5, size=(4, 6)).astype(np.int32), axis=1)
    check(ours, theirs, precision, logits3, rng.integers(0, 30, size=4).astype(np.int32), axis=(1, 2))
    where = rng.uniform(size=(6, 11)) > 0.3
    where[0] = False
    check(ours, theirs, precision, logits, labels, where=where)


def test_safe_softmax_cross_entropy_handles_minus_infinity(rng, precision):
    dtype = precision[0]
    logits = normal(rng, (5, 6), dtype)
    labels = probabilities(rng, (5, 6), dtype)
    labels[:, :2] = 0
    logits[:, 0] = -np.inf
    check(losses.safe_softmax_cross_entropy, optax.losses.safe_softmax_cross_entropy,
          precision, logits, labels)
    got = np.asarray(losses.safe_softmax_cross_entropy(em.array(logits), em.array(labels)))
    assert np.all(np.isfinite(got))


def test_divergences(rng, precision):
    dtype = precision[0]
    log_predictions = np.log(probabilities(rng, (4, 8), dtype))
    targets = probabilities(rng, (4, 8), dtype)
    targets[:, 0] = 0
    where = rng.uniform(size=(4, 8)) > 0.2
    check(losses.kl_divergence, optax.losses.kl_divergence, precision, log_predictions, targets)
    check(losses.kl_divergence, optax.losses.kl_divergence, precision, log_predictions, targets,
          where=where)
    check(losses.kl_divergence_with_log_targets, optax.losses.kl_divergence_with_log_targets,
          precision, log_predictions, np.log(probabilities(rng, (4, 8), dtype)), axis=0)
    check(losses.generalized_kl_divergence, optax.losses.generalized_kl_divergence, precision,
          log_predictions, targets * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        check(losses.convex_kl_divergence, optax.losses.convex_kl_divergence, precision,
              log_predictions, targets, where=where)


def test_regression_losses(rng, precision):
    dtype = precision[0]
    predictions, targets = normal(rng, (3, 17), dtype, 2), normal(rng, (3, 17), dtype, 2)
    for name in ("squared_error", "l2_loss", "log_cosh"):
        check(getattr(losses, name), getattr(optax.losses, name), precision, predictions, targets)
        check(getattr(losses, name), getattr(optax.losses, name), precision, predictions)
    check(losses.huber_loss, optax.losses.huber_loss, precision, predictions, targets,
          delta=float(rng.uniform(0.2, 2)))
    check(losses.huber_loss, optax.losses.huber_loss, precision, predictions, targets[:1])
    check(losses.log_cosh, optax.losses.log_cosh, precision, normal(rng, (9,), dtype, 100))
    where = rng.uniform(size=(3, 17)) > 0.3
    for name in ("cosine_similarity", "cosine_distance"):
        check(getattr(losses, name), getattr(optax.losses, name), precision, predictions, targets)
        check(getattr(losses, name), getattr(optax.losses, name), precision, predictions,
              targets, epsilon=0.5, axis=0, where=where)


def test_margin_losses(rng, precision):
    dtype = precision[0]
    scores = normal(rng, (6, 5), dtype, 2)
    signs = rng.choice([-1.0, 1.0], size=(6, 5)).astype(dtype)
    check(losses.hinge_loss, optax.losses.hinge_loss, precision, scores, signs)
    check(losses.perceptron_loss, optax.losses.perceptron_loss, precision, scores, signs)
    labels = rng.integers(0, 5, size=6).astype(np.int32)
    check(losses.multiclass_hinge_loss, optax.losses.multiclass_hinge_loss, precision, scores, labels)
    check(losses.multiclass_perceptron_loss, optax.losses.multiclass_perceptron_loss, precision,
          scores, labels)


def test_sparsemax_losses(rng, precision):
    dtype = precision[0]
    scores = normal(rng, (7, 6), dtype, 1.5)
    scores[0, :3] = scores[0, 3]  # ties
    check(losses.sparsemax_loss, optax.losses.sparsemax_loss, precision,
          scores, rng.integers(0, 2, size=(7, 6)).astype(np.int32))
    labels = rng.integers(0, 6, size=7).astype(np.int32)
    check(losses.multiclass_sparsemax_loss, optax.losses.multiclass_sparsemax_loss, precision,
          scores, labels)
    check(losses._sparsemax.projection_simplex, jax.vmap(optax.projections.projection_simplex), precision,
          scores)


def test_smooth_labels(rng, precision):
    dtype = precision[0]
    labels = np.eye(7, dtype=dtype)[rng.integers(0, 7, size=5)]
    alpha = float(rng.uniform(0, 0.5))
    check(losses.smooth_labels, optax.losses.smooth_labels, precision, labels, alpha)
    check(losses.smooth_labels, optax.losses.smooth_labels, precision, labels, alpha,
          where=rng.uniform(size=(5, 7)) > 0.3)


def test_ranking_softmax_loss(rng, precision):
    dtype = precision[0]
    logits = normal(rng, (4, 9), dtype)
    labels = rng.integers(0, 3, size=(4, 9)).astype(dtype)
    where = rng.uniform(size=(4, 9)) > 0.3
    where[1] = False
    weights = rng.uniform(size=(4, 9)).astype(dtype)
    ours, theirs = losses.ranking_softmax_loss, optax.losses.ranking_softmax_loss
    check(ours, theirs, precision, logits, labels)
    check(ours, theirs, precision, logits, labels, where=where, weights=weights)
    for ours_fn, theirs_fn in ((None, None), (em.sum, jnp.sum), (em.mean, jnp.mean)):
        check(lambda *a, **k: ours(*a, reduce_fn=ours_fn, **k),
              lambda *a, **k: theirs(*a, reduce_fn=theirs_fn, **k), precision,
              logits, labels, where=where)


def test_dice_losses(rng, precision):
    dtype = precision[0]
    logits = normal(rng, (2, 5, 6, 4), dtype)
    targets = np.eye(4, dtype=dtype)[rng.integers(0, 4, size=(2, 5, 6))]
    for reduction in ("mean", "sum", "none"):
        check(losses.dice_loss, optax.losses.dice_loss, precision, logits, targets,
              reduction=reduction, alpha=0.3, beta=0.7, ignore_background=True)
    check(losses.dice_loss, optax.losses.dice_loss, precision, logits, targets,
          class_weights=rng.uniform(size=4).astype(dtype), smooth=0.5)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    check(losses.dice_loss, optax.losses.dice_loss, precision, probs, targets,
          apply_softmax=False)
    check(losses.multiclass_generalized_dice_loss, optax.losses.multiclass_generalized_dice_loss,
          precision, logits, targets)
    binary_targets = rng.integers(0, 2, size=(3, 8, 8)).astype(dtype)
    check(losses.binary_dice_loss, optax.losses.binary_dice_loss, precision,
          normal(rng, (3, 8, 8), dtype), binary_targets)


def test_self_supervised_losses(rng, precision):
    dtype = precision[0]
    embeddings = normal(rng, (8, 5), dtype)
    labels = rng.integers(0, 3, size=8).astype(np.int32)
    check(losses.ntxent, optax.losses.ntxent, precision, embeddings, labels, 0.5)
    a, p, n = (normal(rng, (6, 4), dtype) for _ in range(3))
    check(losses.triplet_margin_loss, optax.losses.triplet_margin_loss, precision, a, p, n)
    check(losses.triplet_margin_loss, optax.losses.triplet_margin_loss, precision, a, p, n,
          axis=0, norm_degree=4, margin=0.3)


def test_fenchel_young_with_logsumexp_is_softmax_cross_entropy(rng, precision):
    dtype = precision[0]
    scores = normal(rng, (3, 4, 6), dtype)
    targets = probabilities(rng, (3, 4, 6), dtype)
    ours = losses.make_fenchel_young_loss(em.logsumexp)
    theirs = optax.losses.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    check(ours, theirs, precision, scores, targets)


def test_ctc_loss(rng, precision):
    dtype = precision[0]
    batch, steps, classes, max_labels = 3, 12, 5, 4
    logits = normal(rng, (batch, steps, classes), dtype)
    logit_paddings = np.zeros((batch, steps), dtype)
    logit_paddings[1, 9:] = 1
    labels = rng.integers(1, classes, size=(batch, max_labels)).astype(np.int32)
    labels[0, 1] = labels[0, 0]  # a repeated label needs a blank between
    label_paddings = np.zeros((batch, max_labels), dtype)
    label_paddings[2, 2:] = 1
    check(losses.ctc_loss, optax.losses.ctc_loss, precision,
          logits, logit_paddings, labels, label_paddings)
    for got, expected in zip(
            losses.ctc_loss_with_forward_probs(*_convert((logits, logit_paddings, labels, label_paddings), "ember")),
            optax.losses.ctc_loss_with_forward_probs(*_convert((logits, logit_paddings, labels, label_paddings), "jax"))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected),
                                   rtol=precision[1] * 10, atol=precision[2] * 1e5)


def test_loss_argument_errors():
    with pytest.raises(TypeError, match=r"\[softmax_cross_entropy\] logits must have a floating dtype, got .*int32"):
        losses.softmax_cross_entropy(em.array([[1, 2]]), em.array([[0.5, 0.5]]))
    with pytest.raises(TypeError, match=r"labels must have an integer dtype"):
        losses.softmax_cross_entropy_with_integer_labels(em.zeros((2, 3)), em.zeros((2,)))
    with pytest.raises(ValueError, match=r"\[perceptron_loss\] shapes must be equal, got predictor_outputs \(3,\), targets \(4,\)"):
        losses.perceptron_loss(em.zeros((3,)), em.zeros((4,)))
    with pytest.raises(ValueError, match=r"\[squared_error\] shapes must be equal"):
        losses.squared_error(em.zeros((2, 3)), em.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"axis 3 is out of bounds for an array of 2 dimensions"):
        losses.softmax_cross_entropy_with_integer_labels(em.zeros((2, 3)), em.zeros((2,), em.int32), axis=3)
    with pytest.raises(ValueError, match=r"\[dice_loss\] unsupported reduction 'avg'"):
        losses.dice_loss(em.zeros((1, 2, 3)), em.zeros((1, 2, 3)), reduction="avg")
    with pytest.raises(ValueError, match=r"predictions must be probability distributions"):
        losses.dice_loss(em.ones((1, 2, 3)), em.zeros((1, 2, 3)), apply_softmax=False)
    with pytest.raises(ValueError, match=r"\[ntxent\] labels and embeddings must have the same leading dimension"):
        losses.ntxent(em.zeros((4, 2)), em.zeros((3,), em.int32))
    with pytest.raises(ValueError, match=r"\[ctc_loss\] logits must be \(batch, time, classes\)"):
        losses.ctc_loss(em.zeros((2, 3)), em.zeros((2,)), em.zeros((2, 1), em.int32), em.zeros((2, 1)))


# mlx.nn.losses: oracles written with numpy (and torch where its definition matches).

def _np_reduce(loss, reduction):
    return {"none": loss, "mean": np.mean(loss), "sum": np.sum(loss)}[reduction]


@pytest.fixture(params=[(np.float32, 1e-6), (np.float64, 1e-12)], ids=["float32", "float64"])
def mlx_precision(request):
    """(dtype, rtol) of an mlx.nn.losses run."""
    return request.param


def check_mlx(got, expected, precision):
    dtype, rtol = precision
    got, expected = np.asarray(got), np.asarray(expected, dtype=dtype)
    assert got.dtype == dtype, (got.dtype, dtype)
    np.testing.assert_allclose(got, expected, rtol=rtol,
                               atol=rtol * max(1.0, float(np.max(np.abs(expected)))))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mlx_cross_entropy(rng, reduction, mlx_precision):
    dtype = mlx_precision[0]
    logits = normal(rng, (6, 10), dtype, 3)
    indices = rng.integers(0, 10, size=6)
    smoothing = float(rng.uniform(0.05, 0.5))
    for label_smoothing in (0.0, smoothing):
        expected = F.cross_entropy(torch.tensor(logits), torch.tensor(indices),
                                   label_smoothing=label_smoothing, reduction=reduction)
        got = mlx_losses.cross_entropy(em.array(logits), em.array(indices.astype(np.int32)),
                                       label_smoothing=label_smoothing, reduction=reduction)
        check_mlx(got, expected.numpy(), mlx_precision)
    probs = probabilities(rng, (6, 10), dtype)
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(probs), reduction=reduction)
    check_mlx(mlx_losses.cross_entropy(em.array(logits), em.array(probs), reduction=reduction),
              expected.numpy(), mlx_precision)
    weights = rng.uniform(size=6).astype(dtype)
    per_example = F.cross_entropy(torch.tensor(logits), torch.tensor(indices), reduction="none").numpy()
    check_mlx(mlx_losses.cross_entropy(em.array(logits), em.array(indices.astype(np.int32)),
                                       weights=em.array(weights), reduction=reduction),
              _np_reduce(per_example * weights, reduction), mlx_precision)
    logits_axis0 = np.ascontiguousarray(logits.T)
    check_mlx(mlx_losses.cross_entropy(em.array(logits_axis0), em.array(indices.astype(np.int32)),
                                       axis=0), F.cross_entropy(torch.tensor(logits), torch.tensor(indices),
                                                                reduction="none").numpy(), mlx_precision)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mlx_elementwise_losses(rng, reduction, mlx_precision):
    dtype = mlx_precision[0]
    x, y = normal(rng, (4, 7), dtype, 2), normal(rng, (4, 7), dtype, 2)
    tx, ty = torch.tensor(x), torch.tensor(y)
    ex, ey = em.array(x), em.array(y)
    check_mlx(mlx_losses.l1_loss(ex, ey, reduction), F.l1_loss(tx, ty, reduction=reduction), mlx_precision)
    check_mlx(mlx_losses.mse_loss(ex, ey, reduction), F.mse_loss(tx, ty, reduction=reduction), mlx_precision)
    beta = float(rng.uniform(0.3, 2))
    check_mlx(mlx_losses.smooth_l1_loss(ex, ey, beta, reduction),
              F.smooth_l1_loss(tx, ty, beta=beta, reduction=reduction), mlx_precision)
    delta = float(rng.uniform(0.3, 2))
    check_mlx(mlx_losses.huber_loss(ex, ey, delta, reduction),
              F.huber_loss(tx, ty, delta=delta, reduction=reduction), mlx_precision)
    check_mlx(mlx_losses.log_cosh_loss(ex, ey, reduction),
              _np_reduce(np.log(np.cosh((x - y).astype(np.float64))), reduction), mlx_precision)
    signs = rng.choice([-1.0, 1.0], size=(4, 7)).astype(dtype)
    check_mlx(mlx_losses.hinge_loss(ex, em.array(signs), reduction),
              _np_reduce(np.maximum(1 - x * signs, 0), reduction), mlx_precision)
    margin = float(rng.uniform(0, 1))
    check_mlx(mlx_losses.margin_ranking_loss(ex, ey, em.array(signs), margin, reduction),
              F.margin_ranking_loss(tx, ty, torch.tensor(signs), margin=margin, reduction=reduction), mlx_precision)
    probs = rng.uniform(0.01, 0.99, size=(4, 7)).astype(dtype)
    targets = rng.integers(0, 2, size=(4, 7)).astype(dtype)
    check_mlx(mlx_losses.binary_cross_entropy(ex, em.array(targets), reduction=reduction),
              F.binary_cross_entropy_with_logits(tx, torch.tensor(targets), reduction=reduction), mlx_precision)
    check_mlx(mlx_losses.binary_cross_entropy(em.array(probs), em.array(targets), with_logits=False,
                                              reduction=reduction),
              F.binary_cross_entropy(torch.tensor(probs), torch.tensor(targets), reduction=reduction), mlx_precision)
    variances = rng.uniform(1e-7, 2, size=(4, 7)).astype(dtype)
    for full in (False, True):
        v = np.maximum(variances.astype(np.float64), 1e-6)
        expected = 0.5 * (np.log(v) + (y - x) ** 2 / v) + (0.5 * np.log(2 * np.pi) if full else 0)
        check_mlx(mlx_losses.gaussian_nll_loss(ex, ey, em.array(variances), full=full,
                                               reduction=reduction),
                  _np_reduce(expected, reduction), mlx_precision)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_mlx_distribution_and_embedding_losses(rng, reduction, mlx_precision):
    dtype = mlx_precision[0]
    log_p = np.log(probabilities(rng, (5, 6), dtype))
    log_q = np.log(probabilities(rng, (5, 6), dtype))
    check_mlx(mlx_losses.kl_div_loss(em.array(log_p), em.array(log_q), reduction=reduction),
              _np_reduce(np.sum(np.exp(log_q) * (log_q - log_p), axis=-1), reduction), mlx_precision)
    indices = rng.integers(0, 6, size=5)
    check_mlx(mlx_losses.nll_loss(em.array(log_p), em.array(indices.astype(np.int32)),
                                  reduction=reduction),
              F.nll_loss(torch.tensor(log_p), torch.tensor(indices), reduction=reduction), mlx_precision)
    a, p, n = (normal(rng, (5, 6), dtype) for _ in range(3))
    margin = float(rng.uniform(0.5, 2))
    distance = lambda u, v: np.sqrt(np.sum((u - v) ** 2, axis=-1) + 1e-6)
    check_mlx(mlx_losses.triplet_loss(em.array(a), em.array(p), em.array(n), margin=margin,
                                      reduction=reduction),
              _np_reduce(np.maximum(distance(a, p) - distance(a, n) + margin, 0), reduction), mlx_precision)
    cosine = np.sum(a * p, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(p, axis=1), 1e-8)
    check_mlx(mlx_losses.cosine_similarity_loss(em.array(a), em.array(p), reduction=reduction),
              _np_reduce(cosine, reduction), mlx_precision)


def test_mlx_loss_errors():
    x = em.zeros((2, 3))
    with pytest.raises(ValueError, match=r"\[mse_loss\] invalid reduction 'avg'; must be one of \('none', 'mean', 'sum'\)"):
        mlx_losses.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match=r"\[l1_loss\] predictions shape \(2, 3\) does not match targets shape \(3, 2\)"):
        mlx_losses.l1_loss(x, em.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] targets shape \(3,\) does not match logits shape \(2, 3\)"):
        mlx_losses.cross_entropy(x, em.zeros((3,), em.int32))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\), got 1.0"):
        mlx_losses.cross_entropy(x, em.zeros((2,), em.int32), label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"\[binary_cross_entropy\] weights shape \(3,\) is not the shape of the loss \(2, 3\)"):
        mlx_losses.binary_cross_entropy(x, x, weights=em.ones((3,)))
    with pytest.raises(ValueError, match=r"\[gaussian_nll_loss\] inputs shape \(2, 3\) does not match vars shape \(2, 1\)"):
        mlx_losses.gaussian_nll_loss(x, x, em.ones((2, 1)))
    with pytest.raises(ValueError, match=r"\[margin_ranking_loss\] the shapes of the arguments do not match"):
        mlx_losses.margin_ranking_loss(x, x, em.zeros((2,)))


def test_mlx_losses_without_a_name_clash_are_exported_at_top_level():
    for name in ("binary_cross_entropy", "cross_entropy", "mse_loss", "nll_loss", "triplet_loss"):
        assert getattr(losses, name) is getattr(mlx_losses, name)
    assert losses.hinge_loss is not mlx_losses.hinge_loss


# Gradients: em.grad of the summed loss against jax.grad of optax's.

def check_grad(ours, theirs, precision, first, *rest, **kwargs):
    """d/d(first) of sum(loss(first, *rest)) in ember and in JAX agree."""
    _, rtol, atol = precision
    rest_em, rest_jx = _convert(rest, "ember"), _convert(rest, "jax")
    kw_em = {k: _convert(v, "ember") for k, v in kwargs.items()}
    kw_jx = {k: _convert(v, "jax") for k, v in kwargs.items()}
    got = em.grad(lambda a: em.sum(ours(a, *rest_em, **kw_em)))(em.array(first))
    expected = jax.jit(jax.grad(lambda a: jnp.sum(theirs(a, *rest_jx, **kw_jx))))(jnp.asarray(first))
    got, expected = np.asarray(got), np.asarray(expected)
    assert np.all(np.isfinite(got)) == np.all(np.isfinite(expected))
    scale = max(1.0, float(np.max(np.abs(expected), initial=0)))
    np.testing.assert_allclose(got, expected, rtol=rtol * 10, atol=atol * 10 * scale)


def test_loss_gradients_match_jax(rng, precision):
    dtype = precision[0]
    logits = normal(rng, (5, 7), dtype, 3)
    probs = probabilities(rng, (5, 7), dtype)
    labels = rng.integers(0, 7, size=5).astype(np.int32)
    binary = rng.integers(0, 2, size=(5, 7)).astype(dtype)
    where = rng.uniform(size=(5, 7)) > 0.3
    where[:, 0] = True
    L, O = losses, optax.losses
    check_grad(L.sigmoid_binary_cross_entropy, O.sigmoid_binary_cross_entropy, precision, logits, binary)
    check_grad(L.sigmoid_focal_loss, O.sigmoid_focal_loss, precision, logits, binary, alpha=0.3)
    check_grad(L.softmax_cross_entropy, O.softmax_cross_entropy, precision, logits, probs)
    check_grad(L.softmax_cross_entropy, O.softmax_cross_entropy, precision, logits, probs, where=where)
    check_grad(L.softmax_cross_entropy_with_integer_labels,
               O.softmax_cross_entropy_with_integer_labels, precision, logits, labels)
    check_grad(L.poly_loss_cross_entropy, O.poly_loss_cross_entropy, precision, logits, probs)
    masked_probs = probs.copy()
    masked_probs[:, :2] = 0
    minus_inf = logits.copy()
    minus_inf[:, 0] = -np.inf
    check_grad(L.safe_softmax_cross_entropy, O.safe_softmax_cross_entropy, precision,
               minus_inf, masked_probs)
    check_grad(L.kl_divergence, O.kl_divergence, precision, np.log(probs), masked_probs)
    check_grad(L.huber_loss, O.huber_loss, precision, logits, normal(rng, (5, 7), dtype), delta=0.7)
    check_grad(L.log_cosh, O.log_cosh, precision, logits)
    check_grad(L.cosine_similarity, O.cosine_similarity, precision, logits, probs)
    check_grad(L.multiclass_hinge_loss, O.multiclass_hinge_loss, precision, logits, labels)
    check_grad(L.sparsemax_loss, O.sparsemax_loss, precision, logits / 3, binary.astype(np.int32))
    check_grad(L.multiclass_sparsemax_loss, O.multiclass_sparsemax_loss, precision, logits, labels)
    check_grad(L.ntxent, O.ntxent, precision, normal(rng, (6, 4), dtype),
               rng.integers(0, 2, size=6).astype(np.int32), 0.5)
    check_grad(L.triplet_margin_loss, O.triplet_margin_loss, precision, logits,
               normal(rng, (5, 7), dtype), normal(rng, (5, 7), dtype))
    check_grad(L.ranking_softmax_loss, O.ranking_softmax_loss, precision, logits, binary)
    check_grad(L.dice_loss, O.dice_loss, precision, normal(rng, (2, 3, 4, 5), dtype),
               np.eye(5, dtype=dtype)[rng.integers(0, 5, size=(2, 3, 4))])
    check_grad(L.ctc_loss, O.ctc_loss, precision, normal(rng, (2, 8, 4), dtype),
               np.zeros((2, 8), dtype), rng.integers(1, 4, size=(2, 3)).astype(np.int32),
               np.zeros((2, 3), dtype))
