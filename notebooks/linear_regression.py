"""Linear regression fit by SGD: the MLX quick-start example on ember.

1,000 examples, 100 features, 10,000 steps of gradient descent on
0.5 * mean((X @ w - y)**2). Expected output is near
`Loss 0.00005, |w-w*| = 0.00364`.

The data are drawn with numpy at the edge; the gradient comes from em.grad,
and everything else runs on ember arrays.
"""
import time

import numpy as np

import ember.core as em

num_features = 100
num_examples = 1_000
num_iters = 10_000
lr = 0.01

rng = np.random.default_rng(0)
w_star = em.array(rng.standard_normal(num_features).astype(np.float32))
X = em.array(rng.standard_normal((num_examples, num_features)).astype(np.float32))
eps = 1e-2 * em.array(rng.standard_normal(num_examples).astype(np.float32))
y = X @ w_star + eps
w = 1e-2 * em.array(rng.standard_normal(num_features).astype(np.float32))


def loss_fn(w):
    return 0.5 * em.mean(em.square(X @ w - y))


grad_fn = em.grad(loss_fn)


tic = time.perf_counter()
for _ in range(num_iters):
    grad = grad_fn(w)
    w = w - lr * grad
    em.eval(w)
toc = time.perf_counter()

loss = loss_fn(w)
error_norm = em.sum(em.square(w - w_star)).item() ** 0.5
print(f"Loss {loss.item():.5f}, |w-w*| = {error_norm:.5f}, "
      f"Throughput {num_iters / (toc - tic):.2f} (it/s)")
