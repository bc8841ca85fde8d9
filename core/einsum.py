"""einsum and einsum_path (mlx.core's signatures, numpy's subscript rules).

An einsum is planned, then run as a chain of pairwise contractions:

  1. parse: each operand's subscripts become a tuple of labels (letters;
     '...' becomes one label per broadcast axis, right-aligned across
     operands as numpy broadcasts them); the output is given after '->' or,
     implicitly, the labels used once, sorted, after the ellipsis axes.
  2. per operand: repeated labels ('ii') take a diagonal, and labels no other
     operand and not the output needs are summed away at once.
  3. path: greedily contract the pair whose result removes the most memory
     (the size of the result minus the sizes of the pair, as opt_einsum's
     greedy does), breaking ties by the pair's cost; a path is the list of
     positions contracted at each step, the result going to the end of the
     list (numpy's and mlx's format).
  4. each pair contracts as one batched matmul (size-1 axes of a label are
     broadcast first, numpy's rule): batch labels (in both and
     still needed), free labels (in one), summed labels (in both, no longer
     needed) are grouped by transposes and reshapes.

Everything is ember ops (diagonal, sum, transpose, reshape, matmul), so
einsum's gradients, vmap and compile come from theirs.
"""
import string

from . import dtypes as _dt
from .array import asarray
from .manipulation import broadcast_to, diagonal, reshape, transpose
from .products import matmul
from .reductions import any as _any, sum as _sum

_LETTERS = set(string.ascii_letters)


def _parse_term(term, ndim, ellipsis_labels, position):
    """Labels of one operand's subscripts (ellipsis axes get labels from
    ellipsis_labels, right-aligned)."""
    if term.count("...") > 1 or "." in term.replace("...", ""):
        raise ValueError(f"[einsum] operand {position}: subscripts {term!r} have a malformed "
                         f"ellipsis")
    for c in term.replace("...", ""):
        if c not in _LETTERS:
            raise ValueError(f"[einsum] invalid subscript {c!r} in {term!r}: only letters "
                             f"a-z, A-Z and '...' are allowed")
    if "..." not in term:
        if len(term) != ndim:
            raise ValueError(f"[einsum] operand {position} has {ndim} dimensions but "
                             f"subscripts {term!r} name {len(term)}")
        return tuple(term)
    head, tail = term.split("...")
    n_ellipsis = ndim - len(head) - len(tail)
    if n_ellipsis < 0:
        raise ValueError(f"[einsum] operand {position} has {ndim} dimensions but subscripts "
                         f"{term!r} name at least {len(head) + len(tail)}")
    dots = tuple(ellipsis_labels[len(ellipsis_labels) - n_ellipsis:]) if n_ellipsis else ()
    return tuple(head) + dots + tuple(tail)


def _parse(subscripts, shapes):
    """(input label tuples, output label tuple, size of each label)."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"[einsum] subscripts {subscripts!r} name {len(terms)} operands but "
                         f"{len(shapes)} were given")
    n_dots = 0
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n_dots = max(n_dots, len(shape) - len(term.replace("...", "")))
    # Ellipsis labels are the digits '0', '1', ...: never letters, so never clash.
    ellipsis_labels = [str(i) for i in range(n_dots)]
    labels = [_parse_term(t, len(s), ellipsis_labels, i)
              for i, (t, s) in enumerate(zip(terms, shapes))]
    sizes = {}
    for position, (term, shape) in enumerate(zip(labels, shapes)):
        for label, size in zip(term, shape):
            known = sizes.get(label)
            if known is None or known == 1:
                sizes[label] = size
            elif size not in (known, 1):
                raise ValueError(f"[einsum] subscript {_show((label,))!r} has size {size} in "
                                 f"operand {position} but {known} elsewhere (shapes "
                                 f"{[tuple(s) for s in shapes]})")
    if arrow:
        if "." in output.replace("...", "") or output.count("...") > 1:
            raise ValueError(f"[einsum] output subscripts {output!r} have a malformed ellipsis")
        for c in output.replace("...", ""):
            if c not in _LETTERS:
                raise ValueError(f"[einsum] invalid subscript {c!r} in output {output!r}")
            if c not in sizes:
                raise ValueError(f"[einsum] output subscript {c!r} does not appear in the "
                                 f"inputs")
        plain = output.replace("...", "")
        if len(set(plain)) != len(plain):
            raise ValueError(f"[einsum] output subscripts {output!r} repeat a label")
        head, _, tail = output.partition("...")
        out = tuple(head) + (tuple(ellipsis_labels) if "..." in output else ()) + tuple(tail)
        if "..." not in output and n_dots:
            raise ValueError(f"[einsum] the operands have '...' axes but output subscripts "
                             f"{output!r} have no '...' to put them in")
    else:
        counts = {}
        for term in labels:
            for label in term:
                counts[label] = counts.get(label, 0) + 1
        out = tuple(ellipsis_labels) + tuple(sorted(
            (x for x, c in counts.items() if c == 1 and not x.isdigit())))
    return labels, out, sizes


def _size(labels, sizes):
    n = 1
    for label in labels:
        n *= sizes[label]
    return n


def _needed(terms, skip, output):
    """Labels still needed by the output or by the terms not in skip."""
    keep = set(output)
    for i, term in enumerate(terms):
        if i not in skip:
            keep.update(term)
    return keep


def _pair_result(terms, i, j, output):
    keep = _needed(terms, {i, j}, output)
    joint = terms[i] + tuple(x for x in terms[j] if x not in terms[i])
    return tuple(x for x in joint if x in keep)


def _simplified_terms(labels, output):
    """Each term after its diagonals and early sums (step 2 of the plan)."""
    out = []
    for i, term in enumerate(labels):
        unique = tuple(dict.fromkeys(term))
        keep = _needed(labels, {i}, output)
        out.append(tuple(x for x in unique if x in keep))
    return out


def _greedy_path(terms, output, sizes):
    """The contraction path and its steps: (positions, result labels, cost)."""
    terms = list(terms)
    path, steps = [], []
    while len(terms) > 1:
        best = None
        for i in range(len(terms)):
            for j in range(i + 1, len(terms)):
                result = _pair_result(terms, i, j, output)
                removed = (_size(result, sizes) - _size(terms[i], sizes)
                           - _size(terms[j], sizes))
                cost = _size(set(terms[i]) | set(terms[j]), sizes)
                key = (removed, cost)
                if best is None or key < best[0]:
                    best = (key, i, j, result)
        (_, cost), i, j, result = best
        path.append((i, j))
        steps.append(((i, j), terms[i], terms[j], result, cost))
        terms = [t for k, t in enumerate(terms) if k not in (i, j)] + [result]
    return path, steps


def _plan(subscripts, operands):
    if not isinstance(subscripts, str):
        raise TypeError(f"[einsum] subscripts must be a string, got {type(subscripts).__name__}")
    if not operands:
        raise ValueError("[einsum] at least one operand is required")
    operands = [asarray(x) for x in operands]
    labels, output, sizes = _parse(subscripts, [x.shape for x in operands])
    terms = _simplified_terms(labels, output)
    path, steps = _greedy_path(terms, output, sizes)
    return operands, labels, output, sizes, terms, path, steps


def _reduce_operand(x, term, keep, sizes, stream):
    """Takes diagonals of repeated labels, broadcasts size-1 ellipsis axes
    and sums labels not in keep: returns (array, labels)."""
    term = list(term)
    while len(set(term)) != len(term):
        seen = {}
        for axis, label in enumerate(term):
            if label in seen:
                first = seen[label]
                x = diagonal(x, 0, first, axis, stream=stream)
                term = [t for k, t in enumerate(term) if k not in (first, axis)] + [label]
                break
            seen[label] = axis
    target = tuple(sizes[label] for label in term)
    if tuple(x.shape) != target:
        x = broadcast_to(x, target, stream=stream)
    drop = tuple(k for k, label in enumerate(term) if label not in keep)
    if drop:
        # numpy's bool einsum is or-of-ands: a sum of bools is their any.
        x = (_any if x.dtype == _dt.bool_ else _sum)(x, drop, stream=stream)
        term = [label for label in term if label in keep]
    return x, tuple(term)


def _contract(a, la, b, lb, result, sizes, stream):
    """One pairwise contraction as a batched matmul (step 4 of the plan)."""
    batch = [x for x in result if x in la and x in lb]
    summed = [x for x in la if x in lb and x not in result]
    free_a = [x for x in la if x not in lb]
    free_b = [x for x in lb if x not in la]
    a = transpose(a, [la.index(x) for x in batch + free_a + summed], stream=stream)
    b = transpose(b, [lb.index(x) for x in batch + summed + free_b], stream=stream)
    nb, m = _size(batch, sizes), _size(free_a, sizes)
    k, n = _size(summed, sizes), _size(free_b, sizes)
    out = matmul(reshape(a, (nb, m, k), stream=stream), reshape(b, (nb, k, n), stream=stream),
                 stream=stream)
    labels = batch + free_a + free_b
    out = reshape(out, tuple(sizes[x] for x in labels), stream=stream)
    return transpose(out, [labels.index(x) for x in result], stream=stream)


def einsum(subscripts, *operands, stream=None):
    """Einstein summation over the operands (numpy's subscripts, '...'
    included), contracted pairwise in the order einsum_path gives."""
    operands, labels, output, sizes, _, path, steps = _plan(subscripts, operands)
    dtype = operands[0].dtype
    for x in operands[1:]:
        dtype = _dt.promote_types(dtype, x.dtype)
    arrays, terms = [], []
    for i, (x, term) in enumerate(zip(operands, labels)):
        keep = _needed(labels, {i}, output)
        x, term = _reduce_operand(x.astype(dtype, stream=stream), term, keep, sizes, stream)
        arrays.append(x)
        terms.append(term)
    for (i, j), _, _, result, _ in steps:
        out = _contract(arrays[i], terms[i], arrays[j], terms[j], result, sizes, stream)
        arrays = [x for k, x in enumerate(arrays) if k not in (i, j)] + [out]
        terms = [t for k, t in enumerate(terms) if k not in (i, j)] + [result]
    (x,), (term,) = arrays, terms
    return transpose(x, [term.index(label) for label in output], stream=stream)


def _show(labels):
    return "".join(x if not x.isdigit() else "." for x in labels) if labels else "''"


def einsum_path(subscripts, *operands):
    """The contraction order einsum uses and a description of it: returns
    (path, text), path a list of position pairs (each step contracts two
    operands of the current list and appends the result)."""
    operands, labels, output, sizes, terms, path, steps = _plan(subscripts, operands)
    all_labels = set(sizes)
    naive = _size(all_labels, sizes) * max(len(operands) - 1, 1)
    optimized = sum(cost for *_, cost in steps) if steps else _size(set(terms[0]), sizes)
    largest = max([_size(r, sizes) for *_, r, _ in steps] or [_size(output, sizes)])
    lines = [
        f"  Complete contraction:  {','.join(_show(t) for t in labels)}->{_show(output)}",
        f"         Naive scaling:  {len(all_labels)}",
        f"     Optimized scaling:  "
        f"{max([len(set(a) | set(b)) for _, a, b, _, _ in steps] or [len(set(terms[0]))])}",
        f"      Naive FLOP count:  {naive:.3e}",
        f"  Optimized FLOP count:  {optimized:.3e}",
        f"   Theoretical speedup:  {naive / max(optimized, 1):.3f}",
        f"  Largest intermediate:  {largest:.3e} elements",
        "-" * 60,
        f"{'step':>4}  {'pair':>8}  {'contraction':<24}  {'cost':>10}",
        "-" * 60,
    ]
    for n, ((i, j), a, b, result, cost) in enumerate(steps):
        lines.append(f"{n:>4}  {str((i, j)):>8}  "
                     f"{_show(a) + ',' + _show(b) + '->' + _show(result):<24}  {cost:>10.3e}")
    return path, "\n".join(lines)
