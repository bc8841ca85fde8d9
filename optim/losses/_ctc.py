"""Connectionist temporal classification loss (Graves et al., 2006)."""
import ember.core as em

from ._checks import as_array, log_softmax


def _check_ctc_shapes(logits, logit_paddings, labels, label_paddings):
    if logits.ndim != 3:
        raise ValueError("[ctc_loss] logits must be (batch, time, classes), "
                         f"got shape {logits.shape}")
    if labels.ndim != 2:
        raise ValueError("[ctc_loss] labels must be (batch, label_length), "
                         f"got shape {labels.shape}")
    if tuple(label_paddings.shape) != tuple(labels.shape):
        raise ValueError(f"[ctc_loss] label_paddings shape {label_paddings.shape} must equal "
                         f"labels shape {labels.shape}")
    if tuple(logit_paddings.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"[ctc_loss] logit_paddings shape {logit_paddings.shape} must equal "
                         f"logits shape without classes {logits.shape[:2]}")
    if labels.shape[0] != logits.shape[0]:
        raise ValueError(f"[ctc_loss] labels batch size {labels.shape[0]} must equal "
                         f"logits batch size {logits.shape[0]}")


def _gather_classes(logprobs, labels):
    """logprobs[b, t, labels[b, n]] as (batch, time, n); 0 where a label is out of range."""
    num_classes = logprobs.shape[-1]
    valid = (labels >= 0) & (labels < num_classes)
    index = em.where(valid, labels, 0)
    steps = logprobs.shape[1]
    index = em.broadcast_to(em.expand_dims(index, 1), (labels.shape[0], steps, labels.shape[1]))
    gathered = em.take_along_axis(logprobs, index, axis=2)
    return em.where(em.expand_dims(valid, 1), gathered, 0.0)


def _add_to_phi(phi, score):
    """phi with log(exp(phi[:, 1:]) + exp(score)) in its later columns."""
    return em.concatenate([phi[:, :1], em.logaddexp(phi[:, 1:], score)], axis=-1)


def ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings, *,
                                blank_id: int = 0, log_epsilon=-1e5):
    """CTC loss per sequence with the forward (alpha) log-probabilities.

    Runs the CTC forward recursion in log space over time, with two state sets per
    label position n: "phi" (the last emitted symbol was blank, n labels done;
    N + 1 states) and "emit" (label n is being emitted; N states). A repeated label
    needs a blank in between, which `log_epsilon` (standing for log 0) enforces;
    padded frames (logit_paddings = 1) leave the states unchanged.

    Returns (per_seq_loss (B,), logalpha_phi (T, B, N+1), logalpha_emit (T, B, N)),
    where per_seq_loss = -log p(labels | logits). The time loop is a Python loop, so
    tracing it unrolls T steps.
    """
    logits, labels = as_array(logits), as_array(labels)
    logit_paddings, label_paddings = as_array(logit_paddings), as_array(label_paddings)
    _check_ctc_shapes(logits, logit_paddings, labels, label_paddings)
    batch, steps, _ = logits.shape
    max_label_length = labels.shape[1]
    dtype = logits.dtype

    logprobs = log_softmax(logits, -1)
    label_lengths = max_label_length - em.sum(label_paddings, axis=1).astype(em.int32)
    repeat = (labels[:, :-1] == labels[:, 1:]).astype(dtype)
    repeat = em.pad(repeat, ((0, 0), (0, 1)))
    logprobs_blank = logprobs[:, :, blank_id:blank_id + 1]
    logprobs_emit = _gather_classes(logprobs, labels)
    paddings = logit_paddings.astype(dtype)

    phi = em.concatenate([em.zeros((batch, 1), dtype),
                          em.full((batch, max_label_length), log_epsilon, dtype)], axis=1)
    emit = em.full((batch, max_label_length), log_epsilon, dtype)
    phis, emits = [], []
    for t in range(steps):
        blank_t, emit_t = logprobs_blank[:, t], logprobs_emit[:, t]
        pad = paddings[:, t:t + 1]
        phi_with_emit = _add_to_phi(phi, emit + log_epsilon * repeat)
        next_emit = em.logaddexp(phi_with_emit[:, :-1] + emit_t, emit + emit_t)
        next_phi = _add_to_phi(phi_with_emit + blank_t,
                               emit + blank_t + log_epsilon * (1.0 - repeat))
        emit = pad * emit + (1.0 - pad) * next_emit
        phi = pad * phi + (1.0 - pad) * next_phi
        phis.append(phi)
        emits.append(emit)

    last_phi = _add_to_phi(phis[-1], emits[-1])
    phis[-1] = last_phi
    at_length = em.expand_dims(label_lengths, 1) == em.arange(max_label_length + 1)
    per_seq_loss = -em.sum(em.where(at_length, last_phi, 0.0), axis=1)
    return per_seq_loss, em.stack(phis), em.stack(emits)


def ctc_loss(logits, logit_paddings, labels, label_paddings, *, blank_id: int = 0,
             log_epsilon=-1e5):
    """CTC loss per sequence: -log p(labels | logits), summed over all alignments.

    logits (B, T, K), logit_paddings (B, T) with 1 on padded frames, labels (B, N)
    integer, label_paddings (B, N) with 1 on padded labels. See
    `ctc_loss_with_forward_probs`.
    """
    return ctc_loss_with_forward_probs(logits, logit_paddings, labels, label_paddings,
                                       blank_id=blank_id, log_epsilon=log_epsilon)[0]
