"""Crash safety with a real process: a child saves a large tree step after
step through a CheckpointManager; it is killed with SIGKILL in the middle of
a save; then every step it reported as saved (and the policy kept) is still
there and intact, and no partial checkpoint is visible to all_steps or
restore."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ember import checkpoint

CHILD = textwrap.dedent("""
    import sys
    import ember.core as em
    from ember import checkpoint

    directory, seed = sys.argv[1], int(sys.argv[2])
    mngr = checkpoint.CheckpointManager(
        directory, checkpoint.PyTreeCheckpointer(shard_bytes=24 << 20),
        checkpoint.CheckpointManagerOptions(max_to_keep=3))
    step = 0
    while True:
        # 8 arrays of 4 MiB whose values say which step wrote them
        tree = {"step": step,
                "layers": [em.full((1 << 20,), float(step * 10 + i)) for i in range(8)]}
        mngr.save(step, tree)
        print(step, flush=True)
        step += 1
""")


def _expected_layers(step):
    return [float(step * 10 + i) for i in range(8)]


def _check_visible_steps(directory, reported):
    mngr = checkpoint.CheckpointManager(directory, checkpoint.PyTreeCheckpointer())
    visible = mngr.all_steps()
    # What was reported saved and kept by max_to_keep=3 is there (the save in
    # flight may have pruned one more, never the two latest reported).
    assert set(reported[-2:]) <= set(visible), (reported, visible)
    assert set(visible) <= set(reported[-3:]) | {reported[-1] + 1}, (reported, visible)
    for step in visible:
        tree = mngr.restore(step)  # checksums verified for every array
        assert tree["step"] == step
        for layer, value in zip(tree["layers"], _expected_layers(step)):
            x = np.asarray(layer)
            assert x.shape == (1 << 20,) and x[0] == value and x[-1] == value
    return visible


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_mid_save_leaves_earlier_checkpoints_intact(rng, tmp_path, trial):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory = tmp_path / "run"
    child = subprocess.Popen([sys.executable, str(script), str(directory), str(trial)],
                             stdout=subprocess.PIPE, env=dict(os.environ), text=True)
    reported = []
    try:
        started = time.monotonic()
        while len(reported) < 3:
            line = child.stdout.readline()
            assert line, f"child exited early with {child.wait()}"
            reported.append(int(line))
            if len(reported) == 2:
                per_save = time.monotonic() - started
        # The child now loops on saves: kill it at a random point of one.
        time.sleep(float(rng.uniform(0.1, 0.9)) * per_save / 2)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        rest, _ = child.communicate()
    reported += [int(s) for s in rest.split()]
    assert child.returncode == -signal.SIGKILL
    _check_visible_steps(directory, reported)
    leftovers = [name for name in os.listdir(directory) if name.startswith(".")]
    print("left behind by the killed save:", leftovers)
    assert all(checkpoint.format.is_temporary(name) for name in leftovers), leftovers
    # A manager that cleans up removes what the killed save left behind.
    checkpoint.CheckpointManager(directory, checkpoint.PyTreeCheckpointer(),
                                 checkpoint.CheckpointManagerOptions(
                                     cleanup_tmp_directories=True))
    assert not [name for name in os.listdir(directory) if name.startswith(".")]


def test_a_program_ending_right_after_an_async_save_still_writes_it(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import sys
        import ember.core as em
        from ember import checkpoint
        checkpoint.AsyncCheckpointer().save(sys.argv[1], {"w": em.full((1 << 22,), 3.0) * 2})
    """))
    subprocess.run([sys.executable, str(script), str(tmp_path / "c")], check=True,
                   env=dict(os.environ))
    restored = checkpoint.PyTreeCheckpointer().restore(tmp_path / "c")
    assert np.asarray(restored["w"]).min() == np.asarray(restored["w"]).max() == 6.0
