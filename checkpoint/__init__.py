"""ember.checkpoint: Orbax-style checkpointing of pytrees (not built yet; see the issues)."""
