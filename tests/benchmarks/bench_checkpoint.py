"""Checkpoint throughput on a 1 GiB pytree (64 float32 leaves of 4M elements).

Rows, each the median of --reps runs, files removed after each:
- save: ember PyTreeCheckpointer.save vs writing the same bytes to one plain
  file (write + fsync, as a checkpoint must) vs orbax PyTreeCheckpointer.save
  of the same tree as numpy arrays;
- restore: ember restore (checksums verified) vs reading that plain file
  into 64 arrays (allocated once: warm memory, as the engine's caching
  allocator gives ember after its first restore) vs orbax restore;
- async: how long AsyncCheckpointer.save blocks the caller, and how long a
  training-like loop of ember ops takes while the save runs, against the
  synchronous save time.

    PYTHONPATH=/tmp/pkg/NAME python3 tests/benchmarks/bench_checkpoint.py [--reps 3]
"""
import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

import ember.core as em
from ember import checkpoint

LEAVES, LEAF_ELEMENTS = 64, 4 << 20


def make_tree(rng):
    return {f"layer_{i:02d}": em.array(rng.standard_normal(LEAF_ELEMENTS, dtype=np.float32))
            for i in range(LEAVES)}


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def plain_write(path, tree):
    with open(path, "wb") as f:
        for leaf in tree.values():
            f.write(np.asarray(leaf).data)
        f.flush()
        os.fsync(f.fileno())


def plain_read(path, buffers):
    """Reads the file into 64 arrays allocated once and reused: warm memory,
    as the engine's caching allocator gives ember's restore after the first."""
    with open(path, "rb") as f:
        for buffer in buffers:
            f.readinto(buffer.data.cast("B"))
    return buffers


def interleaved(reps, contenders):
    """{name: median seconds}: each rep runs every contender once, in turn, so
    they share the machine's (noisy, shared) conditions; cleanup after each."""
    times = {name: [] for name in contenders}
    for _ in range(reps):
        for name, (run, cleanup) in contenders.items():
            times[name].append(timed(run)[0])  # the result is dropped at once
            cleanup()
    return {name: statistics.median(t) for name, t in times.items()}


def row(name, ember_s, plain_s, orbax_s, nbytes):
    def rate(s):
        return f"{nbytes / s / 2**30:6.2f} GiB/s ({s:6.3f} s)"
    print(f"{name:8s} | ember {rate(ember_s)} | plain {rate(plain_s)} | ember/plain speed "
          f"{plain_s / ember_s:5.0%} | orbax {rate(orbax_s) if orbax_s else '-'}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-orbax", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    tree = make_tree(rng)
    em.eval(tree)
    nbytes = LEAVES * LEAF_ELEMENTS * 4
    work = tempfile.mkdtemp(prefix="bench_checkpoint_")
    ckpt, plain = os.path.join(work, "ckpt"), os.path.join(work, "plain.bin")
    ckptr = checkpoint.PyTreeCheckpointer()
    try:
        def remove_ckpt():
            shutil.rmtree(ckpt, ignore_errors=True)

        def remove_plain():
            if os.path.exists(plain):
                os.remove(plain)

        orbax_ckptr = as_numpy = None
        orbax_dir = os.path.join(work, "orbax")
        if not args.no_orbax:
            import orbax.checkpoint as ocp
            orbax_ckptr = ocp.PyTreeCheckpointer()
            as_numpy = {k: np.asarray(v) for k, v in tree.items()}  # views, no copies

        def remove_orbax():
            shutil.rmtree(orbax_dir, ignore_errors=True)

        saves = {"plain": (lambda: plain_write(plain, tree), remove_plain),
                 "ember": (lambda: ckptr.save(ckpt, tree), remove_ckpt)}
        if orbax_ckptr is not None:
            saves["orbax"] = (lambda: orbax_ckptr.save(orbax_dir, as_numpy), remove_orbax)
        save = interleaved(args.reps, saves)

        plain_write(plain, tree)
        ckptr.save(ckpt, tree)
        buffers = [np.ones(LEAF_ELEMENTS, np.float32) for _ in range(LEAVES)]
        restores = {"plain": (lambda: plain_read(plain, buffers), lambda: None),
                    "ember": (lambda: ckptr.restore(ckpt), lambda: None)}
        if orbax_ckptr is not None:
            orbax_ckptr.save(orbax_dir, as_numpy)
            restores["orbax"] = (lambda: orbax_ckptr.restore(orbax_dir), lambda: None)
        restore = interleaved(args.reps, restores)
        remove_plain()
        remove_orbax()
        # Check what was timed: the restored tree is the saved one.
        restored = ckptr.restore(ckpt)
        assert all(np.array_equal(np.asarray(restored[k]), np.asarray(tree[k])) for k in tree)
        del restored, as_numpy, buffers

        print(f"1 GiB pytree: {LEAVES} float32 leaves of {LEAF_ELEMENTS} elements, median of "
              f"{args.reps}; files on {work}")
        row("save", save["ember"], save["plain"], save.get("orbax"), nbytes)
        row("restore", restore["ember"], restore["plain"], restore.get("orbax"), nbytes)
        save_ember = save["ember"]

        remove_ckpt()
        async_ckptr = checkpoint.AsyncCheckpointer(ckptr)
        x = em.array(rng.standard_normal((256, 256), dtype=np.float32))

        def train(steps):
            y = x
            for _ in range(steps):
                y = em.tanh(y @ x) * 0.5
                em.eval(y)

        steps = 50
        train_alone, _ = timed(lambda: train(steps))
        blocked, train_with_save, total = [], [], []
        for _ in range(args.reps):
            start = time.perf_counter()
            seconds, _ = timed(lambda: async_ckptr.save(ckpt, tree))
            blocked.append(seconds)
            seconds, _ = timed(lambda: train(steps))
            train_with_save.append(seconds)
            async_ckptr.wait_until_finished()
            total.append(time.perf_counter() - start)
            remove_ckpt()
        blocked_s = statistics.median(blocked)
        print(f"async    | save() blocks the caller {blocked_s * 1e3:7.2f} ms = "
              f"{blocked_s / save_ember:6.2%} of the synchronous save ({save_ember:.3f} s); "
              f"{steps} training steps {train_alone:.3f} s alone, "
              f"{statistics.median(train_with_save):.3f} s beside the save; "
              f"save to disk {statistics.median(total):.3f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
