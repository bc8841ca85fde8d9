"""ember.linen: a stateless module system mirroring flax.linen (not built yet; see the issues)."""
