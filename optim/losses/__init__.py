"""Loss functions: optax.losses, and mlx.nn.losses in `ember.optim.losses.nn`.

Every Optax loss keeps its name, signature and numerics and returns per-example
values (reduce them yourself, e.g. `.mean()`). The MLX losses take a `reduction`
('none', 'mean', 'sum'); those whose names Optax does not use are exported here too,
while MLX's `hinge_loss` and `huber_loss` (other signatures than Optax's) are only in
`ember.optim.losses.nn`.
"""
from . import nn
from ._ctc import ctc_loss, ctc_loss_with_forward_probs
from ._cross_entropy import (poly_loss_cross_entropy, safe_softmax_cross_entropy,
                             sigmoid_binary_cross_entropy, sigmoid_focal_loss,
                             softmax_cross_entropy, softmax_cross_entropy_with_integer_labels)
from ._divergence import (convex_kl_divergence, generalized_kl_divergence, kl_divergence,
                          kl_divergence_with_log_targets)
from ._fenchel_young import make_fenchel_young_loss
from ._margin import hinge_loss, multiclass_hinge_loss, multiclass_perceptron_loss, perceptron_loss
from ._ranking import ranking_softmax_loss
from ._regression import (cosine_distance, cosine_similarity, huber_loss, l2_loss, log_cosh,
                          squared_error)
from ._segmentation import binary_dice_loss, dice_loss, multiclass_generalized_dice_loss
from ._self_supervised import ntxent, triplet_margin_loss
from ._smoothing import smooth_labels
from ._sparsemax import multiclass_sparsemax_loss, sparsemax_loss
from .nn import (binary_cross_entropy, cosine_similarity_loss, cross_entropy, gaussian_nll_loss,
                 kl_div_loss, l1_loss, log_cosh_loss, margin_ranking_loss, mse_loss, nll_loss,
                 smooth_l1_loss, triplet_loss)
