"""ember.checkpoint: Orbax-style checkpointing of pytrees that never loses data.

    from ember import checkpoint
    ckptr = checkpoint.PyTreeCheckpointer()
    ckptr.save("run/classifier.ckpt", params)
    params = ckptr.restore("run/classifier.ckpt", item=params)
    mngr = checkpoint.CheckpointManager(
        "run/managed", ckptr, checkpoint.CheckpointManagerOptions(max_to_keep=4))

Modules: format (the on-disk layout: safetensors shards + a JSON index,
checksums, atomic directories), checkpointer (PyTreeCheckpointer, RestoreArgs),
async_checkpointer (AsyncCheckpointer), manager (CheckpointManager and its
options), interop (flat .safetensors/.npz weight files, flax msgpack files),
msgpack (a decoder for the latter).
"""
from .async_checkpointer import AsyncCheckpointer
from .checkpointer import ArrayRestoreArgs, PyTreeCheckpointer, RestoreArgs
from .interop import load_weights, restore_flax_msgpack, save_weights
from .manager import (CheckpointInfo, CheckpointManager, CheckpointManagerOptions,
                      StepAlreadyExistsError)

