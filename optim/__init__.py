"""ember.optim: Optax's GradientTransformation library on ember arrays (not built yet; see the issues)."""
