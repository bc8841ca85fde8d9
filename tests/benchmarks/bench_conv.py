"""Convolution benchmarks, ember beside PyTorch (CPU) in one run.

    python tests/benchmarks/bench_conv.py

conv2d, batch 32, 32x32x64 -> 64 channels, 3x3 kernel, stride 1, padding 1,
float32: the forward pass, and the backward pass (gradients of sum(conv)
w.r.t. input and weight: em.grad against torch's autograd backward). ember
runs channels-last (mlx's layout); torch runs its default NCHW layout and
channels_last memory format. Prints medians and ember's time divided by
torch's best (below 1 means ember is faster). Machines are shared and noisy,
so the contenders run in turns (interleaved rounds of blocks of calls, each
block after a pause and an untimed call: tests/benchmarks/_timing.py) and
each figure is a median: read the ratios, not the absolute times.
"""

import numpy as np
import torch
import torch.nn.functional as F

import ember.core as em
from _timing import interleaved_medians


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 32, 32, 64)).astype(np.float32)
    w = (rng.standard_normal((64, 3, 3, 64)) * 0.05).astype(np.float32)
    xe, we = em.array(x), em.array(w)
    em.eval(xe, we)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    tw = torch.from_numpy(w).permute(0, 3, 1, 2).contiguous()
    tx_cl = tx.to(memory_format=torch.channels_last)
    tw_cl = tw.to(memory_format=torch.channels_last)

    grad = em.grad(lambda a, b: em.sum(em.conv2d(a, b, padding=1)), argnums=(0, 1))

    def torch_backward(a, b):
        a = a.detach().requires_grad_()
        b = b.detach().requires_grad_()
        F.conv2d(a, b, padding=1).sum().backward()
        return a.grad, b.grad

    with torch.no_grad():
        fwd = interleaved_medians([lambda: em.eval(em.conv2d(xe, we, padding=1)),
                                   lambda: F.conv2d(tx, tw, padding=1),
                                   lambda: F.conv2d(tx_cl, tw_cl, padding=1)])
    bwd = interleaved_medians([lambda: em.eval(*grad(xe, we)),
                               lambda: torch_backward(tx, tw),
                               lambda: torch_backward(tx_cl, tw_cl)], rounds=10)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"ember {em.__name__}, float32")
    print(f"{'conv2d 32x32x32x64 -> 64, 3x3, pad 1':40s} {'ember':>9s} {'torch NCHW':>11s} "
          f"{'torch NHWC':>11s} {'ember/torch':>12s}")
    for title, (te, tn, tc) in (("forward", fwd), ("backward (grad of sum, x and w)", bwd)):
        print(f"{title:40s} {te * 1e3:7.2f}ms {tn * 1e3:9.2f}ms {tc * 1e3:9.2f}ms "
              f"{te / min(tn, tc):12.2f}")


if __name__ == "__main__":
    main()
