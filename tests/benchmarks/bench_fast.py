"""ember.core.fast beside torch's CPU kernels (float32), in one run.

    python tests/benchmarks/bench_fast.py

rms_norm, layer_norm and rope over activations of a small transformer, and
attention at batch 4, 8 heads, 512 tokens, head dim 64 (no mask, causal, and
grouped-query with 2 key/value heads, and with attention sinks: torch has no
sinks, so it runs the equivalent attention over one more zero key whose
additive mask column holds the sinks), and core's one-pass softmax and
logsumexp over the last axis of the norms' activations. torch's rope is its usual composition
(rotate-half with cached cos/sin), since torch has no fused one. Prints the
median time of each and ember's time divided by torch's (below 1 means ember
is faster). torch uses as many threads as ember's pool. Machines are shared
and noisy: read the ratios, not the absolute times.
"""

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

import ember.core as em
from ember.core._ffi import lib
from _timing import median_time as _median_time

median_time = partial(_median_time, repeat=9)  # this table's repeats


def torch_rope(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def cases(rng):
    x = rng.standard_normal((8, 512, 1024)).astype(np.float32)
    w = rng.standard_normal(1024).astype(np.float32)
    b = rng.standard_normal(1024).astype(np.float32)
    h = rng.standard_normal((4, 8, 512, 64)).astype(np.float32)
    kv = rng.standard_normal((4, 2, 512, 64)).astype(np.float32)
    ex, ew, eb, eh, ekv = (em.array(a) for a in (x, w, b, h, kv))
    tx, tw, tb, th, tkv = (torch.from_numpy(a) for a in (x, w, b, h, kv))
    inv = 10000.0 ** (-np.arange(32) * 2.0 / 64)
    theta = np.arange(512)[:, None] * inv[None, :]
    cos = torch.from_numpy(np.concatenate([np.cos(theta)] * 2, -1).astype(np.float32))
    sin = torch.from_numpy(np.concatenate([np.sin(theta)] * 2, -1).astype(np.float32))
    scale = 1 / 8.0
    sdpa = em.fast.scaled_dot_product_attention
    sinks = rng.standard_normal(8).astype(np.float32)
    es = em.array(sinks)
    zero_key = torch.zeros((4, 8, 1, 64))
    tk_sink = torch.cat([th, zero_key], 2)
    sink_mask = torch.cat([torch.zeros((4, 8, 512, 512)),
                           torch.from_numpy(sinks)[None, :, None, None].expand(4, 8, 512, 1)], -1)
    return [
        ("rms_norm", "(8, 512, 1024)", lambda: em.fast.rms_norm(ex, ew, 1e-5),
         lambda: F.rms_norm(tx, (1024,), tw, 1e-5)),
        ("layer_norm", "(8, 512, 1024)", lambda: em.fast.layer_norm(ex, ew, eb, 1e-5),
         lambda: F.layer_norm(tx, (1024,), tw, tb, 1e-5)),
        ("rope", "(4, 8, 512, 64)",
         lambda: em.fast.rope(eh, 64, traditional=False, base=10000.0, scale=1.0, offset=0),
         lambda: torch_rope(th, cos, sin)),
        ("attention", "4x8x512x64", lambda: sdpa(eh, eh, eh, scale=scale),
         lambda: F.scaled_dot_product_attention(th, th, th, scale=scale)),
        ("causal", "4x8x512x64", lambda: sdpa(eh, eh, eh, scale=scale, mask="causal"),
         lambda: F.scaled_dot_product_attention(th, th, th, scale=scale, is_causal=True)),
        ("gqa 8/2", "4x8x512x64", lambda: sdpa(eh, ekv, ekv, scale=scale),
         lambda: F.scaled_dot_product_attention(th, tkv, tkv, scale=scale, enable_gqa=True)),
        ("sinks", "4x8x512x64", lambda: sdpa(eh, eh, eh, scale=scale, sinks=es),
         lambda: F.scaled_dot_product_attention(th, tk_sink, tk_sink, scale=scale, attn_mask=sink_mask)),
        ("softmax", "(8, 512, 1024)", lambda: em.softmax(ex, axis=-1),
         lambda: torch.softmax(tx, -1)),
        ("logsumexp", "(8, 512, 1024)", lambda: em.logsumexp(ex, axis=-1),
         lambda: torch.logsumexp(tx, -1)),
    ]


def main():
    torch.set_num_threads(lib.em_num_threads())
    rng = np.random.default_rng(0)
    print(f"{'op':<12}{'shape':<18}{'ember ms':>10}{'torch ms':>10}{'ratio':>8}")
    for name, shape, ember_fn, torch_fn in cases(rng):
        def run_ember():
            em.eval(ember_fn())
        te = median_time(run_ember)
        with torch.no_grad():
            tt = median_time(torch_fn)
        print(f"{name:<12}{shape:<18}{te * 1e3:>10.2f}{tt * 1e3:>10.2f}{te / tt:>8.2f}")


if __name__ == "__main__":
    main()
