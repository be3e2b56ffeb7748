"""Shape ops: Flatten, Unflatten, Reshape, Permute, Transpose, Concat, Split, Chunk, Select,
Slice, Identity, ExpandAs, Positions. They move data around; dtypes pass through.
"""
from __future__ import annotations

from .. import dims
from ..dims import Dim, fmt_shape
from ..types import TensorType
from ._shapes import with_values, Pos, check, expect_min_rank, fill, norm_dim, promote
from .base import Inferred, OpDef, OpError, OpParams, register


def _op(name, params, infer, doc, example, category="tensor", **kw):
    register(OpDef(name=name, params=params, infer=infer, doc=doc, example=example,
                   category=category, positional=kw.pop("positional", tuple(params.model_fields)), **kw))


def _fill_minus_one(name: str, sizes: tuple[Dim, ...], total: Dim, what: str, arg: str) -> tuple[Dim, ...]:
    """Resolve one -1 in `sizes` so that their product is `total` (E0307 when impossible)."""
    for s in sizes:  # symbolic sizes come from the input, never negative
        check(not dims.is_static(s) or s >= -1, f"{name} got a negative size {s} in {arg}; only -1 "
              "(inferred) is allowed", arg=arg)
    check(list(sizes).count(-1) <= 1, f"{name} got more than one -1 in {arg}", arg=arg)
    known = dims.prod(s for s in sizes if s != -1)
    try:
        rest = dims.exact_div(total, known) if -1 in sizes else None
    except (ValueError, ZeroDivisionError):
        rest = None
    if -1 in sizes and rest is not None:
        return tuple(rest if s == -1 else s for s in sizes)
    if -1 not in sizes and known == total:
        return sizes
    raise OpError(f"{name} cannot turn {what} ({total} elements) into {fmt_shape(sizes)}",
                  code="E0307", arg=arg)


# --- Flatten, Unflatten, Reshape ------------------------------------------------------------

class FlattenParams(OpParams):
    start_dim: int = 1
    end_dim: int = -1


def _flatten(p: FlattenParams, inputs):
    x, = inputs
    s = norm_dim("Flatten", p.start_dim, x.rank, "start_dim")
    e = norm_dim("Flatten", p.end_dim, x.rank, "end_dim")
    check(s <= e, f"Flatten got start_dim {p.start_dim} after end_dim {p.end_dim}", arg="end_dim")
    return Inferred(p, (x.with_shape(x.shape[:s] + (dims.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]),))


_op("Flatten", FlattenParams, _flatten,
    "Merges dims start_dim..end_dim into one of their product size: [N, C, H, W] -> [N, C*H*W] with the "
    "defaults.\nIn general [*A, d_start, ..., d_end, *B] -> [*A, d_start*...*d_end, *B].", "x |> Flatten")


class UnflattenParams(OpParams):
    dim: int
    sizes: tuple[int, ...]


def _unflatten(p: UnflattenParams, inputs):
    x, = inputs
    d = norm_dim("Unflatten", p.dim, x.rank)
    sizes = _fill_minus_one("Unflatten", p.sizes, x.shape[d], f"dim {p.dim} of {x}", "sizes")
    return Inferred(p, (x.with_shape(x.shape[:d] + sizes + x.shape[d + 1:]),))


_op("Unflatten", UnflattenParams, _unflatten,
    "Splits dim `dim` of size S into `sizes`: [*A, S, *B] -> [*A, *sizes, *B].\n"
    "The sizes multiply to S; one may be -1, inferred: Unflatten(-1, [12, -1]) of [N, 768] is [N, 12, 64].",
    "x |> Unflatten(-1, [12, -1])")


class ReshapeParams(OpParams):
    shape: tuple[int, ...]  # -1: inferred (at most one); 0: keep the input's size at that position


def _reshape(p: ReshapeParams, inputs):
    x, = inputs
    for i, s in enumerate(p.shape):
        check(s != 0 or i < x.rank, f"Reshape got 0 at position {i} but its input {x} has only {x.rank} dims",
              arg="shape")
    sizes = tuple(x.shape[i] if s == 0 else s for i, s in enumerate(p.shape))
    shape = _fill_minus_one("Reshape", sizes, dims.prod(x.shape), str(x), "shape")
    return Inferred(p, (x.with_shape(shape),))


_op("Reshape", ReshapeParams, _reshape,
    "A new shape with the same number of elements: [*] -> [*shape].\n"
    "One size may be -1, inferred; 0 keeps the input's size at that position.",
    "x |> Reshape([0, -1, 64])")


# --- Permute, Transpose -------------------------------------------------------------------

class PermuteParams(OpParams):
    dims: tuple[int, ...]


def _permute(p: PermuteParams, inputs):
    x, = inputs
    ok = all(-x.rank <= d < x.rank for d in p.dims)
    order = [d % x.rank for d in p.dims] if ok else []
    check(ok and sorted(order) == list(range(x.rank)),
          f"Permute got dims {list(p.dims)} but its input {x} needs a permutation of {list(range(x.rank))}",
          arg="dims")
    return Inferred(p, (x.with_shape(x.shape[d] for d in order),))


_op("Permute", PermuteParams, _permute,
    "Reorders the dims: output dim i is input dim dims[i]; Permute([0, 2, 1]): [N, T, C] -> [N, C, T].",
    "x |> Permute([0, 2, 1])")


class TransposeParams(OpParams):
    dim0: int
    dim1: int


def _transpose(p: TransposeParams, inputs):
    x, = inputs
    a, b = norm_dim("Transpose", p.dim0, x.rank, "dim0"), norm_dim("Transpose", p.dim1, x.rank, "dim1")
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return Inferred(p, (x.with_shape(shape),))


_op("Transpose", TransposeParams, _transpose, "Swaps dims dim0 and dim1: Transpose(1, 2) of [N, T, C] -> [N, C, T].",
    "x |> Transpose(1, 2)")


# --- Concat, Split, Chunk -------------------------------------------------------------------

class ConcatParams(OpParams):
    dim: int = 1


def _concat(p: ConcatParams, inputs):
    x = inputs[0]
    d = norm_dim("Concat", p.dim, x.rank)
    for i, t in enumerate(inputs[1:], 1):
        if t.rank != x.rank:
            raise OpError(f"Concat got inputs of different ranks: input 0 is {x} and input {i} is {t}",
                          code="E0303", input=i)
        for j, (a, b) in enumerate(zip(x.shape, t.shape)):
            if j != d and a != b:
                raise OpError(f"Concat inputs differ at dim {j}: input 0 {x} has {a} and input {i} {t} "
                              f"has {b}", code="E0303", input=i)
    size: Dim = 0
    for t in inputs:
        size = dims.add(size, t.shape[d])
    dtype = promote(*(t.dtype for t in inputs))
    return Inferred(p, (TensorType(dtype, x.shape[:d] + (size,) + x.shape[d + 1:]),))


_op("Concat", ConcatParams, _concat,
    "Joins 2 or more tensors along `dim`: [*A, S1, *B], [*A, S2, *B], ... -> [*A, S1 + S2 + ..., *B].\n"
    "All other dims must match; the dtype follows torch's promotion.",
    "Concat(a, b, dim = 1)", inputs=(2, None))


MAX_PIECES = 10_000  # outputs of one Split or Chunk: each is a value of the graph, refused before any is made


def _check_pieces(op: str, pieces: int, arg: str) -> None:
    check(pieces <= MAX_PIECES, f"{op} would make {pieces:,} pieces, more than the limit of {MAX_PIECES:,}",
          arg=arg, code="E0602")


class SplitParams(OpParams):
    split_size_or_sections: Pos | tuple[int, ...]
    dim: int = -1


def _split(p: SplitParams, inputs):
    x, = inputs
    d = norm_dim("Split", p.dim, x.rank)
    size, sections = x.shape[d], p.split_size_or_sections
    if isinstance(sections, int):  # resolved to the list of sections, so the outputs are known
        check(dims.is_static(size), f"Split needs a fixed size at dim {p.dim} to split it into pieces "
              f"of {sections} but its input is {x}; give a list of sections", arg="split_size_or_sections")
        _check_pieces("Split", -(-size // sections), "split_size_or_sections")
        sections = (sections,) * (size // sections) + ((size % sections,) if size % sections else ())
        p = with_values(p, split_size_or_sections=sections)
    check(all(s >= 0 for s in sections), f"Split got a negative section in {list(sections)}",
          arg="split_size_or_sections")
    check(sum(sections) == size, f"Split got sections {list(sections)} summing to {sum(sections)} but "
          f"dim {p.dim} of its input {x} has size {size}", arg="split_size_or_sections")
    return Inferred(p, tuple(x.with_shape(x.shape[:d] + (s,) + x.shape[d + 1:]) for s in sections))


_op("Split", SplitParams, _split,
    "Splits `dim` into pieces, one output each: [*A, S, *B] -> [*A, s1, *B], [*A, s2, *B], ...\n"
    "An int gives pieces of that size, the last one smaller if it does not divide S (which must be fixed); "
    "a list gives the sizes, which must sum to S.", "q, k, v = x |> Split(768)")


class ChunkParams(OpParams):
    chunks: Pos
    dim: int = -1


def _chunk(p: ChunkParams, inputs):
    x, = inputs
    d = norm_dim("Chunk", p.dim, x.rank)
    size, n = x.shape[d], p.chunks
    _check_pieces("Chunk", n, "chunks")
    try:
        sizes = (dims.exact_div(size, n),) * n
    except ValueError:
        check(dims.is_static(size), f"Chunk cannot split dim {p.dim} of {x} into {n} equal chunks",
              arg="chunks")
        step = -(-size // n)  # torch: chunks of ceil(size / n), the last one smaller
        sizes = tuple(min(step, size - i) for i in range(0, size, step))
        check(len(sizes) == n, f"Chunk cannot split size {size} into {n} chunks (torch would return "
              f"{len(sizes)})", arg="chunks")
    return Inferred(p, tuple(x.with_shape(x.shape[:d] + (s,) + x.shape[d + 1:]) for s in sizes))


_op("Chunk", ChunkParams, _chunk,
    "Splits `dim` into `chunks` pieces, one output each: [*A, S, *B] -> chunks x [*A, S/chunks, *B].\n"
    "If chunks does not divide S (which must then be fixed), the pieces are ceil(S/chunks) long, the last "
    "shorter; there must still be `chunks` of them.",
    "q, k, v = x |> Chunk(3)")


# --- Select, Slice --------------------------------------------------------------------------

class SelectParams(OpParams):
    dim: int
    index: int


def _select(p: SelectParams, inputs):
    x, = inputs
    expect_min_rank("Select", x, 1)
    d = norm_dim("Select", p.dim, x.rank)
    size = x.shape[d]
    check(not dims.is_static(size) or -size <= p.index < size,
          f"Select got index {p.index} but dim {p.dim} of its input {x} has size {size}", arg="index")
    return Inferred(p, (x.with_shape(x.shape[:d] + x.shape[d + 1:]),))


_op("Select", SelectParams, _select, "x.select(dim, index): picks one position and drops the dim: "
    "[*A, S, *B] -> [*A, *B].\nE.g. the class token x[:, 0].", "cls = x |> Select(1, 0)")


class SliceParams(OpParams):
    dim: int
    start: int = 0
    end: int | None = None
    step: Pos = 1
    assumes: int | None = None  # inferred: the size a symbolic dim must reach for the inferred shape (checked at run time)


def _slice_len(size: Dim, start: int, end: int | None, step: int) -> Dim:
    """len(range(size)[start:end:step]); a symbolic size is assumed to be large enough."""
    if dims.is_static(size):
        return len(range(*slice(start, end, step).indices(size)))
    lo = start if start >= 0 else dims.add(size, start)
    hi = size if end is None else end if end >= 0 else dims.add(size, end)
    span = dims.sub(hi, lo)
    if dims.is_static(span):  # both ends counted from the same side: the size cancels out
        return max(0, -(-span // step))
    return dims.floordiv(dims.add(span, step - 1), step)


def _slice(p: SliceParams, inputs):
    x, = inputs
    d = norm_dim("Slice", p.dim, x.rank)
    size = x.shape[d]
    # x[-3:10] keeps min(size, 10) - max(size - 3, 0) positions: no single formula over a symbol
    check(dims.is_static(size) or not (p.start < 0 <= (-1 if p.end is None else p.end)),
          f"Slice from {p.start} to {p.end} needs a fixed size at dim {p.dim} but its input is {x}: "
          "count both ends from the same side", arg="end", code="E0302")
    length = _slice_len(size, p.start, p.end, p.step)
    if not dims.is_static(size) and length != 0:  # an empty slice is empty whatever the size
        p = fill("Slice", p, "assumes", _reach(p.start, p.end), "positions at dim", "the slice")
    return Inferred(p, (x.with_shape(x.shape[:d] + (length,) + x.shape[d + 1:]),))


def _reach(start: int, end: int | None) -> int | None:
    """The size a symbolic dim must have for `_slice_len`'s shape to hold: the farthest fixed end
    (x[1:7]: 7; x[-3:]: 3; x[2:]: 2), or None where the length follows the size (x[:-1])."""
    reach = max(start if start >= 0 else -start, end if end is not None and end >= 0 else 0)
    return reach or None


_op("Slice", SliceParams, _slice,
    "x[start:end:step] along `dim`: [*A, S, *B] -> [*A, len(range(S)[start:end:step]), *B].\n"
    "Over a symbolic S the inferred shape assumes S reaches the slice's fixed ends (x[1:7] of N is 6 long for "
    "N >= 7), which the compiled model checks.", "x |> Slice(1, 0, 16)",
    positional=("dim", "start", "end", "step"), inferred=("assumes",))


# --- Identity, ExpandAs, Positions ----------------------------------------------------------

class IdentityParams(OpParams):
    pass


_op("Identity", IdentityParams, lambda p, inputs: Inferred(p, inputs), "Returns its input: [*] -> [*].",
    "x |> Identity", category="misc")


class ExpandAsParams(OpParams):
    dims: tuple[int, ...] = (0,)
    rank: int | None = None  # inferred: the lowering writes src.expand(n, -1, -1) with one size per dim


def _expand_as(p: ExpandAsParams, inputs):
    src, ref = inputs
    if src.rank != ref.rank:
        raise OpError(f"ExpandAs expects src and ref of the same rank but got {src} and {ref}",
                      code="E0305", input=1)
    p = fill("ExpandAs", p, "rank", src.rank, "dims")
    shape = list(src.shape)
    for d in p.dims:
        i = norm_dim("ExpandAs", d, src.rank, "dims")
        if src.shape[i] != 1:
            raise OpError(f"ExpandAs can only expand dims of size 1 but dim {d} of {src} has size "
                          f"{src.shape[i]}", code="E0302", input=0)
        shape[i] = ref.shape[i]
    return Inferred(p, (src.with_shape(shape),))


_op("ExpandAs", ExpandAsParams, _expand_as,
    "Repeats src along its size-1 `dims` to ref's sizes (a view, no copy): (src, ref) -> src's shape with "
    "ref's sizes at `dims`.\nsrc and ref have one rank; e.g. a class token [1, 1, 768] and x [N, 197, 768] "
    "-> [N, 1, 768].", "cls = ExpandAs(class_token, x)", inputs=(2, 2),
    inferred=("rank",), positional=("dims",))


class PositionsParams(OpParams):
    dim: int = 1


def _positions(p: PositionsParams, inputs):
    x, = inputs
    d = norm_dim("Positions", p.dim, x.rank)
    return Inferred(p, (TensorType("int64", (x.shape[d],)),))


_op("Positions", PositionsParams, _positions,
    "The positions 0..S-1 of `dim` of x (on x's device): [*A, S, *B] -> int64[S].\n"
    "The input of a learned position embedding.", "pos = tokens |> Positions |> wpe: Embedding(1024, 768)")
