"""A few losses on a (4096, 1000) batch: eager ember beside jax.jit(optax.losses) and
torch.nn.functional, in one run.

    python tests/benchmarks/bench_optim_losses.py

Times one loss evaluation including its evaluation (em.eval / block_until_ready;
torch is eager). Prints medians in milliseconds and ember's time over JAX's.
Machines are shared and noisy: read the ratios.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F

import ember.core as em
from ember.optim import losses
from _timing import median_time

BATCH, CLASSES = 4096, 1000


def median_ms(fn):
    return 1e3 * median_time(fn)


def main():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((BATCH, CLASSES)).astype(np.float32)
    labels = rng.integers(0, CLASSES, size=BATCH).astype(np.int32)
    targets = rng.uniform(size=(BATCH, CLASSES)).astype(np.float32)
    e_logits, e_labels, e_targets = em.array(logits), em.array(labels), em.array(targets)
    j_logits, j_labels, j_targets = jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(targets)
    t_logits, t_labels, t_targets = (torch.tensor(logits), torch.tensor(labels.astype(np.int64)),
                                     torch.tensor(targets))
    cases = [
        ("softmax_cross_entropy_with_integer_labels",
         lambda: em.eval(losses.softmax_cross_entropy_with_integer_labels(e_logits, e_labels)),
         jax.jit(optax.losses.softmax_cross_entropy_with_integer_labels), (j_logits, j_labels),
         lambda: F.cross_entropy(t_logits, t_labels, reduction="none")),
        ("sigmoid_binary_cross_entropy",
         lambda: em.eval(losses.sigmoid_binary_cross_entropy(e_logits, e_targets)),
         jax.jit(optax.losses.sigmoid_binary_cross_entropy), (j_logits, j_targets),
         lambda: F.binary_cross_entropy_with_logits(t_logits, t_targets, reduction="none")),
        ("huber_loss",
         lambda: em.eval(losses.huber_loss(e_logits, e_targets)),
         jax.jit(optax.losses.huber_loss), (j_logits, j_targets),
         lambda: F.huber_loss(t_logits, t_targets, reduction="none")),
        ("nn.cross_entropy (label_smoothing=0.1, mean)",
         lambda: em.eval(losses.nn.cross_entropy(e_logits, e_labels, label_smoothing=0.1,
                                                 reduction="mean")),
         None, None,
         lambda: F.cross_entropy(t_logits, t_labels, label_smoothing=0.1)),
    ]
    print(f"{'loss':48s} {'ember ms':>9s} {'jax.jit ms':>11s} {'torch ms':>9s} {'ember/jax':>10s}")
    for name, ours, theirs, args, torch_fn in cases:
        ember_ms = median_ms(ours)
        jax_ms = median_ms(lambda: jax.block_until_ready(theirs(*args))) if theirs else float("nan")
        torch_ms = median_ms(torch_fn)
        print(f"{name:48s} {ember_ms:9.2f} {jax_ms:11.2f} {torch_ms:9.2f} {ember_ms / jax_ms:10.2f}")


if __name__ == "__main__":
    main()
