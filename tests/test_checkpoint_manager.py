"""CheckpointManager against orbax's CheckpointManager: the same options and
the same sequence of steps and metrics must give the same should_save and
save results, all_steps, latest_step and best_step after every save, and the
same steps when a new manager reads the directory back."""
import contextlib
import os

import numpy as np
import pytest

import ember.core as em
from ember import checkpoint

from checkpoint_trees import assert_same_tree, random_array, random_tree


def _orbax_manager(directory, **options):
    import orbax.checkpoint as ocp
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
        enable_async_checkpointing=False, **options))


def _orbax_save(manager, step, metrics):
    import orbax.checkpoint as ocp
    return manager.save(step, args=ocp.args.PyTreeSave({"x": np.zeros(2, np.float32)}),
                        metrics=metrics)


def _random_metrics(rng, with_missing):
    if with_missing and rng.random() < 0.25:
        return None
    return {"loss": float(rng.integers(0, 6)), "accuracy": float(rng.random())}


SCENARIOS = {
    "latest_n": dict(max_to_keep=4),
    "interval": dict(save_interval_steps=3, max_to_keep=2),
    "keep_period": dict(max_to_keep=2, keep_period=4),
    "best_min": dict(max_to_keep=3, best_fn="loss", best_mode="min"),
    "best_max_period": dict(max_to_keep=2, best_fn="accuracy", best_mode="max", keep_period=5),
    "best_drop_unscored": dict(max_to_keep=2, best_fn="loss", best_mode="min",
                               keep_checkpoints_without_metrics=False),
    "save_on_steps": dict(save_interval_steps=5, save_on_steps=(3, 7, 8)),
    "keep_all": dict(),
}


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_policies_match_orbax(rng, tmp_path, scenario, asynchronous):
    options = dict(SCENARIOS[scenario])
    if "best_fn" in options:
        key = options["best_fn"]
        options["best_fn"] = lambda metrics, key=key: metrics[key]
    with_missing = "best_fn" in options
    orbax_mngr = _orbax_manager(tmp_path / "orbax", **options)
    ckptr = checkpoint.AsyncCheckpointer() if asynchronous else checkpoint.PyTreeCheckpointer()
    ours = checkpoint.CheckpointManager(tmp_path / "ember", ckptr,
                                        checkpoint.CheckpointManagerOptions(**options))
    tree = {"x": em.zeros((2,))}
    steps = sorted(set(int(s) for s in rng.integers(0, 30, size=14)))
    steps.insert(len(steps) // 2, steps[0])  # a step that is not past the latest
    for step in steps:
        metrics = _random_metrics(rng, with_missing)
        will_save = ours.should_save(step)
        assert will_save == orbax_mngr.should_save(step), step
        warns = metrics is None and with_missing and will_save
        with pytest.warns(UserWarning, match="did not provide metrics") if warns else \
                contextlib.nullcontext():
            saved = ours.save(step, tree, metrics=metrics)
        assert saved == _orbax_save(orbax_mngr, step, metrics), step
        ours.wait_until_finished()
        assert ours.all_steps() == list(orbax_mngr.all_steps()), step
        assert ours.latest_step() == orbax_mngr.latest_step(), step
        assert ours.best_step() == orbax_mngr.best_step(), step
    ours.close()
    orbax_mngr.close()
    again = checkpoint.CheckpointManager(
        tmp_path / "ember", options=checkpoint.CheckpointManagerOptions(**options))
    assert again.all_steps() == list(_orbax_manager(tmp_path / "orbax", **options).all_steps())
    on_disk = sorted(int(name) for name in os.listdir(tmp_path / "ember"))
    assert on_disk == again.all_steps()


def test_the_brief_example(rng, tmp_path):
    params = random_tree(rng)
    options = checkpoint.CheckpointManagerOptions(max_to_keep=4, create=True)
    mngr = checkpoint.CheckpointManager(tmp_path / "run" / "managed",
                                        checkpoint.PyTreeCheckpointer(), options)
    for step in range(10):
        loss = em.array(float(10 - step)) * 1  # a lazy one-element array, as a step returns
        assert mngr.save(step, params, metrics={"loss": loss, "lr": np.float32(0.5)})
    assert mngr.all_steps() == [6, 7, 8, 9]
    assert mngr.latest_step() == 9
    assert mngr.should_save(6) is False
    assert mngr.metrics(9) == {"loss": 1.0, "lr": 0.5}
    assert checkpoint.CheckpointManager(tmp_path / "run" / "managed").metrics(9) == \
        {"loss": 1.0, "lr": 0.5}
    with pytest.raises(TypeError, match=r"metrics.loss is a array; metrics hold"):
        mngr.save(10, params, metrics={"loss": em.zeros((2,))})
    assert_same_tree(mngr.restore(mngr.latest_step(), items=params), params)
    assert_same_tree(mngr.restore(items=params), params)


def test_force_delete_and_errors(rng, tmp_path):
    mngr = checkpoint.CheckpointManager(tmp_path, checkpoint.PyTreeCheckpointer(),
                                        checkpoint.CheckpointManagerOptions(
                                            save_interval_steps=10))
    a = {"a": random_array(rng, "float32", (3,))}
    assert mngr.save(0, a) and not mngr.save(5, a)
    assert mngr.save(5, a, force=True)
    with pytest.raises(checkpoint.StepAlreadyExistsError, match="step 5 already exists"):
        mngr.save(5, a, force=True)
    mngr.delete(0)
    assert mngr.all_steps() == [5] and os.listdir(tmp_path) == ["5"]
    with pytest.raises(FileNotFoundError, match="non-existent step: 0"):
        mngr.delete(0)
    with pytest.raises(FileNotFoundError, match="no checkpoint for step 3"):
        mngr.restore(3)
    with pytest.raises(ValueError, match="best_mode"):
        checkpoint.CheckpointManagerOptions(best_mode="median")
    with pytest.raises(ValueError, match="max_to_keep"):
        checkpoint.CheckpointManagerOptions(max_to_keep=-1)
    with pytest.raises(FileNotFoundError, match="create=True"):
        checkpoint.CheckpointManager(
            tmp_path / "absent", options=checkpoint.CheckpointManagerOptions(create=False))


def test_step_names_and_leftover_temporaries(rng, tmp_path):
    options = checkpoint.CheckpointManagerOptions(step_prefix="ckpt", step_format_fixed_length=5,
                                                  cleanup_tmp_directories=True)
    mngr = checkpoint.CheckpointManager(tmp_path, checkpoint.PyTreeCheckpointer(), options)
    mngr.save(7, {"a": em.array([1])})
    assert os.listdir(tmp_path) == ["ckpt_00007"]
    os.mkdir(tmp_path / ".ckpt_00008.tmp-deadbeef0000")  # what a killed save leaves
    os.mkdir(tmp_path / "notes")
    again = checkpoint.CheckpointManager(tmp_path, checkpoint.PyTreeCheckpointer(), options)
    assert again.all_steps() == [7]
    assert sorted(os.listdir(tmp_path)) == ["ckpt_00007", "notes"]
    assert again.restore(7)["a"].tolist() == [1]


def test_read_only_manager_restores_but_never_writes(rng, tmp_path):
    checkpoint.CheckpointManager(tmp_path, checkpoint.PyTreeCheckpointer()).save(
        1, {"a": em.array([2])})
    reader = checkpoint.CheckpointManager(
        tmp_path, checkpoint.PyTreeCheckpointer(),
        checkpoint.CheckpointManagerOptions(read_only=True))
    assert not reader.should_save(5) and not reader.save(5, {"a": em.array([3])})
    reader.delete(1)
    assert reader.all_steps() == [1] and reader.restore(1)["a"].tolist() == [2]
