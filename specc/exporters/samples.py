"""The model's signature (spec names, dtypes, symbolic shapes) and sample inputs drawn from it.

Float inputs are torch.randn; integer inputs (token ids) are drawn below the smallest
`num_embeddings` of the Embedding layers that read them (else in [0, 2)). The batch dim
takes each verification batch size; other symbols (T) take `dims` (default 8) at the first
sample and grow by 3 at each next one, so a sequence length is checked at two values too.
Every input keeps its declared dtype (a float64 input is fed float64), unless the model's
weights were cast: see input_dtype.
"""
from __future__ import annotations

from math import prod

from ..ir.dims import is_static, substitute
from .base import ExportError, Sample, Signature, TensorSpec

DEFAULT_SYMBOL_SIZE = 8
SYMBOL_STEP = 3
MAX_SAMPLE_VALUES = 2**28  # all inputs of one sample together (1 GiB of float32)


def signature(compiled) -> Signature:
    graph = compiled.ir
    inputs = tuple(_spec(vid, graph.values[vid].type) for vid in graph.inputs)
    outputs = tuple(_spec(name, graph.values[vid].type) for name, vid in zip(graph.output_names, graph.outputs))
    return Signature(inputs, outputs, batch_first(graph.symbols, inputs))


def batch_first(symbols, inputs) -> tuple[str, ...]:
    """The symbols, the batch one first: `N` where the spec has it, else the first input's
    leading dim."""
    symbols = list(symbols)
    lead = inputs[0].shape[0] if inputs and inputs[0].shape else None
    if "N" in symbols:
        lead = "N"
    if isinstance(lead, str) and lead in symbols:
        symbols.remove(lead)
        symbols.insert(0, lead)
    return tuple(symbols)


def _spec(name, tensor_type) -> TensorSpec:
    return TensorSpec(name, tensor_type.dtype, tuple(d if is_static(d) else str(d) for d in tensor_type.shape))


def sample_dims(sig: Signature, batch: int, index: int, sizes: dict | None = None) -> dict:
    """{"N": batch, "T": 8 + 3 * index}: the sizes of the symbols for the index-th sample."""
    sizes = sizes or {}
    dims = {}
    for k, sym in enumerate(sig.symbols):
        if k == 0:
            dims[sym] = batch
        else:
            dims[sym] = int(sizes.get(sym, DEFAULT_SYMBOL_SIZE)) + SYMBOL_STEP * index
    return dims


def make_inputs(compiled, sig: Signature, dims: dict, *, seed: int, device="cpu", float_dtype=None) -> tuple:
    """One tensor per input at these dims, from a fixed seed, each of its declared dtype
    (`float_dtype`, the model's weights' dtype, applies as input_dtype says)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    graph = compiled.ir
    shapes = sample_shapes(compiled, sig, dims)
    tensors = []
    for (vid, spec), shape in zip(zip(graph.inputs, sig.inputs), shapes):
        dtype = input_dtype(spec.dtype, graph.weight_dtype, float_dtype)
        tensors.append(_draw(dtype, shape, embedding_limit(graph, vid), generator).to(device))
    return tuple(tensors)


def input_dtype(declared: str, weight_dtype: str, model_dtype=None):
    """The torch dtype of an input's samples: the declared one, except that a float input declared
    in the spec's weight dtype (Graph.weight_dtype) follows the model's weights where those were
    cast to another dtype (specc.compile(dtype=...), the tensorrt target's precision). A float64
    input of a float32 model stays float64."""
    import torch

    if model_dtype is not None and declared == weight_dtype:
        return model_dtype
    return getattr(torch, declared)


def sample_shapes(compiled, sig: Signature, dims: dict) -> list[tuple[int, ...]]:
    """The inputs' shapes at these dims; ExportError (nothing allocated) for a size below 1 or
    inputs too large to draw (MAX_SAMPLE_VALUES values in all)."""
    graph = compiled.ir
    shapes = [concrete_shape(graph.values[vid].type.shape, dims) for vid in graph.inputs]
    shown = ", ".join(f"{k}={v}" for k, v in dims.items())
    for spec, shape in zip(sig.inputs, shapes):
        if any(d < 1 for d in shape):
            raise ExportError("E0801", f"sample input `{spec.name}` at {shown} would have shape {list(shape)}",
                              help="choose other sizes for the symbolic dims with the `dims` option")
    total = sum(prod(shape) for shape in shapes)
    if total > MAX_SAMPLE_VALUES:
        raise ExportError("E0801", f"the sample inputs at {shown} would hold {total:,} values, more than the "
                          f"limit of {MAX_SAMPLE_VALUES:,} (nothing was allocated)",
                          help="choose smaller batch_sizes (or sizes in `dims`)")
    return shapes


def concrete_shape(shape, dims: dict) -> tuple[int, ...]:
    return tuple(int(substitute(d, dims)) for d in shape)


def embedding_limit(graph, vid: str) -> int | None:
    """The smallest num_embeddings among the Embedding layers that read value `vid`."""
    limits = [graph.layers[node.layer].params.num_embeddings for node in graph.nodes
              if vid in node.inputs and graph.layers[node.layer].op == "Embedding"]
    return min(limits) if limits else None


def _draw(dtype, shape, limit, generator):
    import torch

    if dtype.is_floating_point:
        return torch.randn(shape, generator=generator, dtype=dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    return torch.randint(0, limit or 2, shape, generator=generator, dtype=dtype)


def make_samples(compiled, model, sig: Signature, batch_sizes, *, seed: int = 0, sizes: dict | None = None,
                 device: str = "cpu") -> tuple[Sample, ...]:
    """The verification samples, each with eager PyTorch's outputs (the model in eval mode)."""
    float_dtype = model_float_dtype(model)
    samples = []
    for index, batch in enumerate(batch_sizes):
        dims = sample_dims(sig, batch, index, sizes)
        inputs = make_inputs(compiled, sig, dims, seed=seed + index, device=device, float_dtype=float_dtype)
        samples.append(Sample(dims, inputs, run_eager(model, inputs, dims)))
    return tuple(samples)


def run_eager(model, inputs, dims) -> tuple:
    import torch

    try:
        with torch.no_grad():
            return as_tuple(model(*inputs))
    except Exception as err:  # noqa: BLE001 - the model itself fails on the sample: say at which dims
        from .quiet import reason
        shown = ", ".join(f"{k}={v}" for k, v in dims.items())
        raise ExportError("E0801", f"the model fails on sample inputs at {shown}: {reason(err)}",
                          help="choose other sizes for the symbolic dims with the `dims` option") from err


def as_tuple(out) -> tuple:
    """A model's or an artifact's outputs as a tuple of tensors (or arrays), in spec order."""
    if isinstance(out, (tuple, list)):
        return tuple(out)
    if isinstance(out, dict):
        return tuple(out.values())
    return (out,)


def model_float_dtype(model):
    """The dtype of the model's floating parameters, or None (see input_dtype)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return None
