"""ONNX: torch.onnx.export's dynamo exporter, checked with onnx.checker and run in onnxruntime.

One self-contained file unless the weights pass 2 GB (protobuf's limit), where they go to
`model.onnx.data` beside it. Input and output names are the spec's; each spec symbol becomes
a named dynamic axis ("N", "T"). An output that is also an input (`output x, y` with `input x`)
cannot share its name in ONNX: it becomes `x_out` (an Identity of `x`), and the manifest's
`export.renamed_outputs` says so.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from ..schema.export import OnnxTarget
from .base import Built, ExportError, Job
from .capture import rnn_decompositions

TARGET = "onnx"
FILENAME = "model.onnx"
OPTIONS = OnnxTarget
EXTRA_OPTIONS = {"external_data": None}  # None: only when the weights pass PROTOBUF_LIMIT
PROTOBUF_LIMIT = 2_000_000_000 - 64 * 2**20  # bytes of weights; the rest of the proto needs room too


def require() -> dict:
    missing = [name for name in ("onnx", "onnxruntime", "onnxscript") if not _importable(name)]
    if missing:
        raise ExportError("E0803", f"the onnx target needs {', '.join(missing)}: pip install 'specc[onnx]'")
    import onnx
    import onnxruntime
    import onnxscript
    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "onnxscript": onnxscript.__version__}


def _importable(name: str) -> bool:
    from importlib.util import find_spec
    return find_spec(name) is not None


def device() -> str:
    return "cpu"


def dynamic_axes(job: Job):
    """A tuple (one entry per input) of {axis: "N"}: named dynamic axes, or None without symbols."""
    if not job.signature.symbols:
        return None
    return tuple({axis: d for axis, d in enumerate(spec.shape) if isinstance(d, str)} or None
                 for spec in job.signature.inputs)


def graph_output_names(job: Job) -> list[str]:
    """The spec's output names, except that one an input also has (the model returns that input)
    gets a free name with `_out`: ONNX graph outputs need names of their own."""
    taken = set(job.signature.input_names) | set(job.signature.output_names)
    names = []
    for name in job.signature.output_names:
        if name in job.signature.input_names:
            name = _free_name(f"{name}_out", taken)
            taken.add(name)
        names.append(name)
    return names


def _free_name(name: str, taken: set) -> str:
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name}{k}"
    return candidate


def renamed_outputs(job: Job) -> dict:
    """{spec name: ONNX name} for the outputs graph_output_names renamed."""
    return {spec: onnx for spec, onnx in zip(job.signature.output_names, graph_output_names(job)) if spec != onnx}


def weight_bytes(model) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


def build(job: Job, path: Path) -> Built:
    external = job.options["external_data"]
    if external is None:
        external = weight_bytes(job.model) > PROTOBUF_LIMIT
    with _conversion_failures() as why:
        program = convert(job)
    opset = model_opset(program.model)
    if opset != int(job.options["opset"]):
        raise ExportError("E0801", f"torch.onnx made an opset {opset} model, not the requested opset "
                                   f"{job.options['opset']}: onnx's version converter could not convert it"
                                   + (f" ({why[-1]})" if why else ""),
                          help=f"ask for a later opset ({opset} needs no conversion)")
    _save(program, path, external)
    data = path.with_name(path.name + ".data")
    files = (path, data) if data.exists() else (path,)
    facts = {"opset": opset, "external_data": bool(external), "dynamic_axes": list(job.signature.symbols)}
    if renamed_outputs(job):
        facts["renamed_outputs"] = renamed_outputs(job)
    return Built(files, facts)


@contextlib.contextmanager
def _conversion_failures():
    """The version converter's reasons for failing: torch.onnx logs them and keeps its own opset."""
    reasons = []

    class Collect(logging.Handler):
        def emit(self, record):
            if record.exc_info and record.exc_info[1] is not None:
                reasons.append(str(record.exc_info[1]).rpartition(": ")[2].strip())

    handler, logger = Collect(), logging.getLogger("onnxscript.version_converter")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)  # it logs them as warnings; quiet() raises "onnxscript" to ERROR
    try:
        yield reasons
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def model_opset(model) -> int:
    """The default-domain opset of an onnx_ir model (what ONNXProgram.model holds)."""
    imports = model.opset_imports
    return int(imports.get("", imports.get("ai.onnx", 0)))


def convert(job: Job):
    """torch.onnx.export (dynamo=True) -> an ONNXProgram, not yet saved."""
    import torch

    # torch.onnx applies the RNN while_loop decompositions around its capture only; its later
    # decomposition pass re-traces aten.gru/lstm unrolled, baking the example's sequence length
    # into the ops after them (a Reshape of a GRU's output): keep them for the whole export
    with rnn_decompositions():
        return torch.onnx.export(
            job.model, job.example.inputs, dynamo=True, dynamic_shapes=dynamic_axes(job),
            input_names=job.signature.input_names, output_names=graph_output_names(job),
            opset_version=int(job.options["opset"]), external_data=False, optimize=True,
            verbose=job.verbose, report=False)


def _save(program, path: Path, external: bool) -> None:
    program.save(str(path), external_data=external)


def check(path: Path, job: Job) -> None:
    """onnx.checker (full_check: also shape inference) and the names the spec promises."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i.name for i in proto.graph.input if i.name not in initializers]
    outputs = [o.name for o in proto.graph.output]
    if inputs != job.signature.input_names or outputs != graph_output_names(job):
        raise ExportError("E0801", f"the ONNX graph's inputs {inputs} and outputs {outputs} are not the spec's "
                                   f"{job.signature.input_names} and {graph_output_names(job)}")


def session(path: Path):
    """An onnxruntime CPU session; spinning threads off, so an idle session costs no CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load(path: Path, job: Job):
    check(path, job)
    sess = session(path)
    names = job.signature.input_names

    def run(inputs):
        return sess.run(None, {n: t.detach().cpu().numpy() for n, t in zip(names, inputs)})
    return run
