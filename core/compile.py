"""compile: trace a function once per input signature, replay it in C.

    step = em.compile(train_step)
    loss, params, opt_state = step(params, opt_state, x, y)

A call looks up the signature of its arguments (tree structure, each array's
shape and dtype, every other leaf's value, static arguments). The first call
with a signature traces the function over PLACEHOLDERs and turns the graph
between them and the outputs into a program:

- values that do not depend on the inputs (captured arrays, arrays made inside
  the function) are computed once, at compile time, and become constants of
  the program: an array captured by the function is frozen at its value when
  the function was traced (as in mlx.core: pass it as an argument, or through
  `inputs=`, to see new values);
- nodes with the same primitive, inputs and parameters are merged;
- chains of elementwise ops of one shape become one FUSED node, computed in a
  single pass over memory (native/kernels/fused.c). A chain whose values are
  needed elsewhere too (an optimizer's new moments and parameters) is still
  one node, its outputs stored as rows of one buffer.

Later calls run the program with one call into C (native/program.c), which
builds the nodes over the new inputs; the outputs are lazy arrays like any
other. Inside the traced function there are no values: item(), numpy
conversion or eval of a traced value raise an error that says so.

Updates in place: a kernel may write its output over an input that nothing
else holds by eval time (buffer donation), and a FUSED node's rows take over
the buffer of the previous call's rows when those come back as its inputs.
So a loop that rebinds its state before eval,

    params, opt_state = step(params, opt_state, x, y)
    em.eval(params, opt_state)

updates parameters and moments in place; one that still holds the old state
(a second name, a loop variable) gets new buffers, with the same results.

`inputs` and `outputs` (mlx.core's implicit state): trees of arrays in
mutable containers (lists, dicts) that the function reads and rebinds, e.g.
a model's parameters; they are read before each call and written after it.
"""
import functools
import math
import os

import optree

from . import _codegen
from . import dtypes as _dt
from ._ffi import ffi, last_error, lib
from .array import _op, _wrap, array
from .evaluation import eval as _eval
from .graph import TREE_NAMESPACE, dependent_nodes, keep_graph, node_id, node_of, placeholder
from .primitives import register

_enabled = os.environ.get("EMBER_DISABLE_COMPILE", "") in ("", "0")


def disable_compile():
    """Compiled functions run as plain Python until enable_compile()."""
    global _enabled
    _enabled = False


def enable_compile():
    global _enabled
    _enabled = True


def _flatten(tree):
    return optree.tree_flatten(tree, none_is_leaf=False, namespace=TREE_NAMESPACE)


# ---- implicit state: reading and rebinding arrays inside containers ----

def _state_leaves(tree):
    return [x for x in _flatten(tree)[0] if isinstance(x, array)]


def _replace_state(tree, new_leaves):
    """Rebinds, in place, the arrays of tree (in flattening order) to
    new_leaves: each array must sit in a list or a dict."""
    paths, leaves, _ = optree.tree_flatten_with_path(tree, none_is_leaf=False,
                                                     namespace=TREE_NAMESPACE)
    it = iter(new_leaves)
    for path, leaf in zip(paths, leaves):
        if not isinstance(leaf, array):
            continue
        container = tree
        for k in path[:-1]:
            container = container[k]
        if not isinstance(container, (list, dict)):
            raise TypeError("[compile] arrays in the inputs/outputs state must sit in "
                            f"lists or dicts, not in a {type(container).__name__}")
        container[path[-1]] = next(it)


# ---- the program ----

def _fusible_prims():
    P = lib
    unary = {P.EM_P_ABS, P.EM_P_NEGATIVE, P.EM_P_SIGN, P.EM_P_SQRT, P.EM_P_RSQRT, P.EM_P_EXP,
             P.EM_P_EXPM1, P.EM_P_LOG, P.EM_P_LOG1P, P.EM_P_LOG2, P.EM_P_LOG10, P.EM_P_SIN,
             P.EM_P_COS, P.EM_P_TAN, P.EM_P_ARCSIN, P.EM_P_ARCCOS, P.EM_P_ARCTAN, P.EM_P_SINH,
             P.EM_P_COSH, P.EM_P_TANH, P.EM_P_ARCSINH, P.EM_P_ARCCOSH, P.EM_P_ARCTANH,
             P.EM_P_ERF, P.EM_P_ERFINV, P.EM_P_SIGMOID, P.EM_P_FLOOR, P.EM_P_CEIL,
             P.EM_P_ROUND, P.EM_P_ISNAN, P.EM_P_ISINF, P.EM_P_LOGICAL_NOT}
    binary = {P.EM_P_ADD, P.EM_P_SUBTRACT, P.EM_P_MULTIPLY, P.EM_P_DIVIDE,
              P.EM_P_FLOOR_DIVIDE, P.EM_P_REMAINDER, P.EM_P_POWER, P.EM_P_MAXIMUM,
              P.EM_P_MINIMUM, P.EM_P_ARCTAN2, P.EM_P_LOGADDEXP, P.EM_P_EQUAL,
              P.EM_P_NOT_EQUAL, P.EM_P_LESS, P.EM_P_LESS_EQUAL, P.EM_P_GREATER,
              P.EM_P_GREATER_EQUAL, P.EM_P_LOGICAL_AND, P.EM_P_LOGICAL_OR}
    bool_out = {P.EM_P_ISNAN, P.EM_P_ISINF, P.EM_P_LOGICAL_NOT, P.EM_P_EQUAL,
                P.EM_P_NOT_EQUAL, P.EM_P_LESS, P.EM_P_LESS_EQUAL, P.EM_P_GREATER,
                P.EM_P_GREATER_EQUAL, P.EM_P_LOGICAL_AND, P.EM_P_LOGICAL_OR}
    return unary, binary, bool_out


_UNARY, _BINARY, _BOOL_OUT = _fusible_prims()
# compute classes, as native/kernels/classes.h numbers them
CL_BOOL, CL_I64, CL_U64, CL_F32, CL_F64, CL_C64 = range(6)
_MAX_FUSED_INPUTS = 16
_MAX_FUSED_SLOTS = 96


def _class_of(dtype):
    if dtype == _dt.bool_ or _dt.issubdtype(dtype, _dt.signedinteger):
        return CL_I64
    if _dt.issubdtype(dtype, _dt.unsignedinteger):
        return CL_U64
    if dtype == _dt.float64:
        return CL_F64
    if dtype == _dt.complex64:
        return CL_C64
    return CL_F32


# dtypes whose storage is exactly their compute class: fusing them keeps the
# results bit-identical to the unfused kernels (float16 intermediates would not)
_EXACT = {_dt.float32: CL_F32, _dt.float64: CL_F64, _dt.int64: CL_I64, _dt.uint64: CL_U64,
          _dt.complex64: CL_C64}


class _Instr:
    __slots__ = ("prim", "stream", "ins", "ip", "fp", "dtype", "shape")

    def __init__(self, prim, stream, ins, ip, fp, dtype, shape):
        self.prim, self.stream, self.ins, self.ip, self.fp = prim, stream, ins, ip, fp
        self.dtype, self.shape = dtype, shape

    def out_class(self):
        """The class this op's kernel writes, or None if it cannot be fused."""
        if self.prim in _BOOL_OUT and self.dtype == _dt.bool_:
            return CL_BOOL
        cls = _EXACT.get(self.dtype)
        if cls is None:
            return None
        if self.prim in _UNARY or self.prim in _BINARY or self.prim == lib.EM_P_WHERE:
            return cls
        if self.prim == lib.EM_P_ASTYPE:
            return cls
        return None

    def operand_classes(self, dtype_of):
        if self.prim == lib.EM_P_WHERE:
            return [CL_BOOL, _class_of(dtype_of(self.ins[1])), _class_of(dtype_of(self.ins[2]))]
        if self.prim == lib.EM_P_ASTYPE:
            return [_class_of(dtype_of(self.ins[0]))]
        return [_class_of(dtype_of(s)) for s in self.ins]


class Program:
    """A traced function as a C program, with what is needed to call it."""

    def __init__(self, n_inputs, consts, instrs, out_slots, out_spec):
        self.n_inputs = n_inputs
        self.consts = consts
        self.out_spec = out_spec
        self.n_outputs = len(out_slots)
        self.n_instr = len(instrs)
        # (primitive name, output shape) per instruction, for inspection and tests
        self.ops = [(ffi.string(lib.em_prim_name(op.prim)).decode(), op.shape) for op in instrs]
        # FUSED instructions that name a generated kernel (core/_codegen.py)
        self.generated = sum(1 for op in instrs if op.prim == lib.EM_P_FUSED and _has_kernel(op.ip))
        ins, ips, fps = [], [], []
        for op in instrs:
            ins += op.ins
            ips += op.ip
            fps += op.fp
        ptr = lib.em_program_new(
            n_inputs, len(consts), [c._p for c in consts] or ffi.NULL, len(instrs),
            [op.prim for op in instrs] or ffi.NULL, [op.stream for op in instrs] or ffi.NULL,
            [len(op.ins) for op in instrs] or ffi.NULL, ins or ffi.NULL,
            [len(op.ip) for op in instrs] or ffi.NULL, ips or ffi.NULL,
            [len(op.fp) for op in instrs] or ffi.NULL, fps or ffi.NULL,
            len(out_slots), out_slots or ffi.NULL)
        if not ptr:
            raise last_error()
        self._ptr = ffi.gc(ptr, lib.em_program_free)
        self._outputs = ffi.new("em_array*[]", max(1, len(out_slots)))

    def run(self, pointers):
        """The program over the input nodes `pointers` (an em_array*[])."""
        outs = self._outputs
        if lib.em_program_run(self._ptr, pointers, outs):
            raise last_error()
        return [_wrap(outs[k]) for k in range(self.n_outputs)]


def build_program(placeholders, outputs, out_spec, fuse=True):
    """Turns the traced graph between placeholders and outputs into a Program:
    constants folded, common subexpressions merged, elementwise chains fused."""
    order = dependent_nodes(outputs, placeholders)
    n_in = len(placeholders)
    slot_of = {node_id(p): ("s", i) for i, p in enumerate(placeholders)}
    dtypes = {i: p.dtype for i, p in enumerate(placeholders)}
    shapes = {i: p.shape for i, p in enumerate(placeholders)}
    consts, const_slot = [], {}
    instrs, seen = [], {}

    def const(x):
        # scalars (Python numbers in the function) are merged by value, so that
        # `x * 2.0` written twice is one subexpression
        if x.size == 1 and lib.em_is_evaluated(x._p):
            key = ("value", x.dtype, x.shape, repr(x.item()))  # repr keeps -0.0 apart
        else:
            key = node_id(x)
        if key not in const_slot:
            const_slot[key] = len(consts)
            consts.append(x)
        return ("c", const_slot[key])

    for a in order:
        aid = node_id(a)
        if aid in slot_of:
            continue
        node = node_of(a)
        ins = [slot_of.get(node_id(x)) or const(x) for x in node.inputs]
        if node.prim == lib.EM_P_IDENTITY:  # a transform's marker: a no-op here
            slot_of[aid] = ins[0]
            continue
        stream = lib.em_stream(a._p)
        key = (node.prim, tuple(ins), node.ip, node.fp, stream)
        if key in seen:
            slot_of[aid] = seen[key]
            continue
        ref = ("i", len(instrs))
        instrs.append((node.prim, stream, ins, node.ip, node.fp, a.dtype, a.shape))
        seen[key] = slot_of[aid] = ref
    out_refs = [slot_of.get(node_id(o)) or const(o) for o in outputs]

    # slots: inputs, then constants, then instructions
    base = n_in + len(consts)
    offset = {"s": 0, "c": n_in, "i": base}

    def resolve(ref):
        return offset[ref[0]] + ref[1]

    program = [_Instr(prim, stream, [resolve(r) for r in ins], ip, fp, dtype, shape)
               for prim, stream, ins, ip, fp, dtype, shape in instrs]
    out_slots = [resolve(r) for r in out_refs]
    for k, c in enumerate(consts):
        dtypes[n_in + k], shapes[n_in + k] = c.dtype, c.shape
    for k, op in enumerate(program):
        dtypes[base + k], shapes[base + k] = op.dtype, op.shape
    if consts:
        _eval(consts)  # constant folding: computed once, now
    if fuse:
        program, out_slots = _fuse(program, out_slots, base, dtypes, shapes)
    return Program(n_in, consts, program, out_slots, out_spec)


def _fuse(program, out_slots, base, dtypes, shapes):
    """Merges chains of elementwise instructions of one shape into FUSED
    instructions; returns the new program and output slots.

    A group grows from a root (the last instruction of the chain) through the
    producers of its operands. A producer whose value is also needed outside
    the group joins as an extra output of the group, if every outside consumer
    comes after the root (so no cycle can form) and it has the root's dtype;
    an optimizer's new moments and new parameters are then one pass."""
    n = len(program)
    users = [set() for _ in range(n)]
    for j, op in enumerate(program):
        for s in op.ins:
            if s >= base:
                users[s - base].add(j)
    is_output = [False] * n
    for s in out_slots:
        if s >= base:
            is_output[s - base] = True
    group_of = [None] * n
    groups = []
    for r in range(n - 1, -1, -1):
        root = program[r]
        if group_of[r] is not None or root.out_class() is None:
            continue
        members, frontier = {r}, [r]
        while frontier:
            op = program[frontier.pop()]
            for s, cls in zip(op.ins, op.operand_classes(lambda s: dtypes[s])):
                k = s - base
                if k < 0 or k in members or group_of[k] is not None:
                    continue
                producer = program[k]
                if producer.out_class() != cls or producer.shape != root.shape:
                    continue
                outside = users[k] - members
                if any(c < r for c in outside):
                    continue
                if (outside or is_output[k]) and (producer.dtype != root.dtype
                                                  or cls == CL_BOOL):
                    continue
                if len(members) >= _MAX_FUSED_SLOTS - _MAX_FUSED_INPUTS:
                    continue
                members.add(k)
                frontier.append(k)
        if len(members) < 2:
            continue
        ext_slots = {s for j in members for s in program[j].ins if s - base not in members}
        if len(ext_slots) > _MAX_FUSED_INPUTS:
            continue
        for j in members:
            group_of[j] = len(groups)
        groups.append(sorted(members))
    if not groups:
        return program, out_slots

    # emit: each group becomes one instruction at its root's position
    new_program, new_slot = [], {}

    def remap(s):
        return new_slot.get(s, s) if s >= base else s

    def emit(op):
        new_program.append(op)
        return base + len(new_program) - 1

    roots = {g[-1]: gi for gi, g in enumerate(groups)}
    for j, op in enumerate(program):
        gi = group_of[j]
        if gi is None:
            new_slot[base + j] = emit(_Instr(op.prim, op.stream, [remap(s) for s in op.ins],
                                             op.ip, op.fp, op.dtype, op.shape))
            continue
        if j not in roots:
            continue
        members = groups[gi]
        member_set = set(members)
        outputs = [k for k in members if users[k] - member_set or is_output[k] or k == j]
        inputs, loads, load_of, local, code = [], [], {}, {}, []
        for k in members:
            for s, cls in zip(program[k].ins, program[k].operand_classes(lambda s: dtypes[s])):
                if s - base in member_set or (s, cls) in load_of:
                    continue
                if s not in inputs:
                    inputs.append(s)
                load_of[(s, cls)] = len(loads)
                loads.append((inputs.index(s), cls))
        for k in members:
            mop = program[k]
            refs = [local[s] if s - base in member_set else load_of[(s, cls)]
                    for s, cls in zip(mop.ins, mop.operand_classes(lambda s: dtypes[s]))]
            local[base + k] = len(loads) + len(code)
            code.append((mop.prim, mop.out_class(), *refs, *[-1] * (3 - len(refs))))
        ip = [int(op.dtype.value), len(loads)]
        for inp, cls in loads:
            ip += [inp, cls]
        ip.append(len(code))
        for c in code:
            ip += list(c)
        ip.append(len(outputs))
        ip += [local[base + k] for k in outputs]
        ip += _generated_kernel(loads, code, [local[base + k] for k in outputs],
                                [inputs[i] for i, _ in loads], op, dtypes, shapes)
        shape = op.shape if len(outputs) == 1 else (len(outputs),) + op.shape
        fused = emit(_Instr(lib.EM_P_FUSED, op.stream, [remap(s) for s in inputs], tuple(ip),
                            (), op.dtype, shape))
        if len(outputs) == 1:
            new_slot[base + j] = fused
            continue
        # output i is row i of the stacked result: one view node per output
        size, strides = 1, []
        for d in reversed(op.shape):
            strides.insert(0, size)
            size *= d
        for i, k in enumerate(outputs):
            view = (len(op.shape), *op.shape, *strides, i * size)
            new_slot[base + k] = emit(_Instr(lib.EM_P_AS_STRIDED, op.stream, [fused], view, (),
                                             op.dtype, op.shape))
    return new_program, [remap(s) for s in out_slots]


def _has_kernel(ip):
    at = 2 + 2 * ip[1]
    at += 1 + 5 * ip[at]
    return len(ip) > at + 1 + ip[at]


def _generated_kernel(loads, code, out_slots, load_slots, root, dtypes, shapes):
    """The FUSED program's trailer naming its generated kernel (core/_codegen.py):
    [index, then per load its kind: 1 (of the root's shape), 0 (one element)
    or R (a row of R elements, broadcast along the root's leading axes), and
    the dtype the kernel reads it as], or [] where the chain is interpreted:
    too small to pay for a compile, a load broadcast otherwise, or a
    conversion that is not a plain cast (see _codegen.converts)."""
    if math.prod(root.shape) < _codegen.min_size():
        return []
    if _CLASS_DTYPE.get(code[out_slots[0] - len(loads)][1]) != root.dtype:
        return []
    kinds, ctypes = [], []
    for s in load_slots:
        ctype = _codegen.DTYPE_CTYPE.get(dtypes[s].name)
        if ctype is None:
            return []
        ctypes.append(ctype)
        shape = tuple(shapes[s])
        while shape and shape[0] == 1:
            shape = shape[1:]
        if tuple(shapes[s]) == tuple(root.shape):
            kinds.append(1)
        elif not shape:
            kinds.append(0)
        elif shape == tuple(root.shape[len(root.shape) - len(shape):]):
            kinds.append(math.prod(shape))  # a row broadcast along the leading axes
        else:
            return []
    index = _codegen.kernel(list(zip([c for _, c in loads], kinds, ctypes)), code, out_slots)
    if index is None:
        return []
    return [index] + [v for k, s in zip(kinds, load_slots) for v in (k, int(dtypes[s].value))]


# ---- the FUSED primitive's rules: expand the program back into its ops ----

def _expand(node):
    """The FUSED node's computation as ordinary (unfused) nodes over its inputs."""
    from .manipulation import stack
    ip = node.ip
    n_loads = ip[1]
    slots = [node.inputs[ip[2 + 2 * k]] for k in range(n_loads)]
    at = 2 + 2 * n_loads
    n_code = ip[at]
    at += 1
    for _ in range(n_code):
        prim, out_cls, a, b, c = ip[at:at + 5]
        at += 5
        args = [slots[r] for r in (a, b, c) if r >= 0]
        if prim == lib.EM_P_ASTYPE:
            slots.append(args[0].astype(_CLASS_DTYPE[out_cls]))
        else:
            slots.append(_op(prim, args))
    n_out = ip[at]
    outs = [slots[k].astype(node.out.dtype) for k in ip[at + 1:at + 1 + n_out]]
    return outs[0] if n_out == 1 else stack(outs)


_CLASS_DTYPE = {CL_BOOL: _dt.bool_, CL_I64: _dt.int64, CL_U64: _dt.uint64, CL_F32: _dt.float32,
                CL_F64: _dt.float64, CL_C64: _dt.complex64}


def _fused_vjp(node, g):
    from .autodiff import backward
    return backward([_expand(node)], [g], node.inputs)


def _fused_jvp(node, tangents):
    from .autodiff import forward
    return forward(node.inputs, tangents, [_expand(node)])[0]


def _fused_vmap(node, inputs, axes):
    from .vmap import rebuild
    sources = [x for x, a in zip(node.inputs, axes) if a is not None]
    batched = [(x, a) for x, a in zip(inputs, axes) if a is not None]
    return rebuild(sources, batched, [_expand(node)])[0]


register(lib.EM_P_FUSED, jvp=_fused_jvp, vjp=_fused_vjp, vmap=_fused_vmap)


# ---- compile ----

def _value_signature(x):
    """The cache key of a non-array leaf: its type and value."""
    try:
        hash(x)
    except TypeError:
        raise TypeError(f"[compile] non-array argument of type {type(x).__name__} is not "
                        "hashable; pass it as an array or mark it static") from None
    return ("value", type(x), x)


def _array_signature(pointers, n, shapeless):
    """The arrays' dtypes and shapes (ndims if shapeless) as bytes, read in
    one call into C."""
    cap = 6 * n
    buf = ffi.new("int64_t[]", cap or 1)
    need = lib.em_signature(n, pointers, shapeless, buf, cap)
    if need > cap:
        buf = ffi.new("int64_t[]", need)
        lib.em_signature(n, pointers, shapeless, buf, need)
    return ffi.buffer(buf, 8 * need)[:]


class _Compiled:
    def __init__(self, fun, inputs, outputs, shapeless, static_argnums, static_argnames):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.inputs = inputs
        self.outputs = outputs
        self.shapeless = shapeless
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        self.static_argnums = tuple(static_argnums or ())
        self.static_argnames = tuple(static_argnames or ())
        self.cache = {}
        self.trace_count = 0

    def __call__(self, *args, **kwargs):
        if not _enabled:
            return self.fun(*args, **kwargs)
        statics = []
        dyn_args = list(args)
        for n in self.static_argnums:
            if not -len(args) <= n < len(args):
                raise ValueError(f"[compile] static_argnums {n} is out of range for "
                                 f"{len(args)} positional arguments")
            statics.append(("arg", n % len(args), args[n]))
            dyn_args[n] = None
        dyn_kwargs = dict(kwargs)
        for name in self.static_argnames:
            if name in dyn_kwargs:
                statics.append(("kw", name, dyn_kwargs.pop(name)))
        try:
            static_key = hash(tuple(statics)) and tuple(statics)
        except TypeError:
            raise TypeError("[compile] static arguments must be hashable") from None
        leaves, spec = _flatten((dyn_args, dyn_kwargs))
        state_in = _state_leaves(self.inputs) if self.inputs is not None else []
        # the key: tree structure, static values, each non-array leaf's value
        # (None marks an array's place), and every array's dtype and shape
        arrays = [x for x in leaves if isinstance(x, array)]
        values = (None if len(arrays) == len(leaves) else
                  tuple(None if isinstance(x, array) else _value_signature(x) for x in leaves))
        arrays += state_in
        pointers = ffi.new("em_array*[]", [x._p for x in arrays]) if arrays else ffi.NULL
        key = (spec, static_key, values, len(state_in),
               _array_signature(pointers, len(arrays), self.shapeless))
        prog = self.cache.get(key)
        if prog is None:
            prog = self._trace(leaves, spec, state_in, args, kwargs)
            self.cache[key] = prog
        try:
            results = prog.run(pointers)
        except ValueError as e:
            if self.shapeless:
                raise ValueError(f"{e} (in a shapeless compiled function: an op whose "
                                 "parameters depend on shapes cannot change shape; use "
                                 "shapeless=False)") from None
            raise
        n_state = prog.n_state_out
        outs = results[:len(results) - n_state] if n_state else results
        if n_state:
            _replace_state(self.outputs, results[len(results) - n_state:])
        return optree.tree_unflatten(prog.out_spec, outs)

    def _trace(self, leaves, spec, state_in, args, kwargs):
        self.trace_count += 1
        placeholders, traced = [], []
        for x in leaves:
            if isinstance(x, array):
                p = placeholder(x.shape, x.dtype, "compile")
                placeholders.append(p)
                traced.append(p)
            else:
                traced.append(x)
        dyn_args, dyn_kwargs = optree.tree_unflatten(spec, traced)
        for n in self.static_argnums:
            dyn_args[n % len(args)] = args[n]
        for name in self.static_argnames:
            if name in kwargs:
                dyn_kwargs[name] = kwargs[name]
        state_ph = [placeholder(x.shape, x.dtype, "compile") for x in state_in]
        if state_in:
            _replace_state(self.inputs, state_ph)
        try:
            with keep_graph():
                result = self.fun(*dyn_args, **dyn_kwargs)
                out_leaves, out_spec = _flatten(result)
                for o in out_leaves:
                    if not isinstance(o, array):
                        raise TypeError(f"[compile] a compiled function must return arrays "
                                        f"(or trees of them), got {type(o).__name__}")
                state_out = _state_leaves(self.outputs) if self.outputs is not None else []
                prog = build_program(placeholders + state_ph, out_leaves + state_out,
                                     out_spec)
        finally:
            if state_in:
                _replace_state(self.inputs, state_in)
        prog.n_state_out = len(state_out)
        return prog


def compile(fun=None, inputs=None, outputs=None, shapeless=False, *, static_argnums=(),
            static_argnames=()):
    """fun compiled: traced once per input signature, then replayed in C with
    its graph simplified and its elementwise chains fused (see the module
    docstring). Usable as a decorator, with or without arguments."""
    if fun is None:
        return lambda f: compile(f, inputs, outputs, shapeless, static_argnums=static_argnums,
                                 static_argnames=static_argnames)
    return _Compiled(fun, inputs, outputs, shapeless, static_argnums, static_argnames)
