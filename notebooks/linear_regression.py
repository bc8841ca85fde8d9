"""Linear regression fit by SGD: the MLX quick-start example on ember.

1,000 examples, 100 features, 10,000 steps of gradient descent on
0.5 * mean((X @ w - y)**2). Expected output is near
`Loss 0.00005, |w-w*| = 0.00364`.

Everything runs on ember: the data come from em.random (JAX's Threefry
generator), the gradient from em.grad.
"""
import time

import ember.core as em

num_features = 100
num_examples = 1_000
num_iters = 10_000
lr = 0.01

em.random.seed(0)
w_star = em.random.normal((num_features,))
X = em.random.normal((num_examples, num_features))
eps = 1e-2 * em.random.normal((num_examples,))
y = X @ w_star + eps
w = 1e-2 * em.random.normal((num_features,))


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
