"""Processes and devices: single process, DDP or FSDP through torch.distributed.

A run is distributed when torchrun (or `specc train --nproc N`, which re-executes itself
under torchrun) set RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; the process
group comes from those (`env://`), so torchrun's multi-node rendezvous options work as they
are. The backend is NCCL on CUDA and gloo on CPU. Only rank 0 writes files and prints.

- DDP (`strategy = "auto"` or `"ddp"` with several processes): the model is replicated;
  BatchNorm becomes SyncBatchNorm on CUDA (statistics over the global batch, as with one
  process; torch has no CPU SyncBatchNorm, so on CPU each rank normalises its own slice).
- FSDP (`strategy = "fsdp"`): torch.distributed.fsdp.fully_shard on each top-level layer
  with parameters, then on the root; meant for CUDA/NCCL, and it runs on CPU/gloo too (tests).
  Checkpoints hold the full (gathered) state either way.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import Diagnostic, SpecError


@dataclass(frozen=True)
class Env:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    strategy: str  # single | ddp | fsdp

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def launched() -> bool:
    """True inside a process started by torchrun (or another launcher that sets the env:// variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main_process() -> bool:
    """Rank 0 of torchrun's (or Lightning's) processes, or a process on its own."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0))) == 0


def world_from_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def pick_device(wanted: str, local_rank: int, world: int, plan) -> torch.device:
    cuda = torch.cuda.is_available()
    mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available() and world == 1  # no MPS backend
    if wanted == "auto":
        wanted = "cuda" if cuda else "mps" if mps else "cpu"
    if (wanted == "cuda" and not cuda) or (wanted == "mps" and not mps):
        raise SpecError([Diagnostic("E0701", f"device `{wanted}` is not available on this machine",
                                    plan.span("device"), label="not available", help="use device = \"auto\"")])
    return torch.device(f"cuda:{local_rank}") if wanted == "cuda" else torch.device(wanted)


@contextmanager
def session(plan):
    """The process group (when launched by torchrun) and this process's device, for one run."""
    rank, world, local_rank = world_from_env() if launched() else (0, 1, 0)
    device = pick_device(plan.config.device, local_rank, world, plan)
    strategy = "single" if world == 1 else ("fsdp" if plan.config.strategy == "fsdp" else "ddp")
    if world == 1:
        yield Env(0, 1, 0, device, strategy)
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")
    try:
        yield Env(rank, world, local_rank, device, strategy)
        if owns_group:  # no rank tears the group down while another is still in a collective
            dist.barrier()
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()
            # gloo's finished work may still hold tensors: free them while the interpreter is whole,
            # not during its shutdown (where that aborts the process)
            gc.collect()


def relaunch(nproc: int, argv: list[str]) -> int:
    """Run `specc <argv>` in `nproc` processes on this machine, with torchrun's agent in this process;
    the first failing process's exit code (its errors are on stderr already: no launcher traceback)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    with _agent_quarters(nproc):
        try:
            run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "specc", *argv]))
        except ChildFailedError as err:
            _, first = err.get_first_failure()
            return first.exitcode if first.exitcode > 0 else 1
        except SignalException as err:  # the agent stopped the processes (rank 0 says "specc: interrupted")
            return 128 + err.sigval
    return 0


@contextmanager
def _agent_quarters(nproc: int):
    """What torchrun's agent changes in its process (environment, signal handlers, log levels), set
    for the run and put back after it, so that a program calling specc keeps its own."""
    environ = dict(os.environ)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    main_thread = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    logs = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
            if name.startswith("torch.distributed")]
    levels = [log.level for log in logs]
    for log in logs:  # "Sending process ... SIGTERM", "failed (exitcode: 1)": the processes said why
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
        if main_thread:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        for log, level in zip(logs, levels):
            log.setLevel(level)


# ---- wrapping --------------------------------------------------------------------------------
def wrap(model: nn.Module, env: Env) -> nn.Module:
    if env.strategy == "single":
        return model
    if env.strategy == "fsdp":
        return _fully_shard(model)
    from torch.nn.parallel import DistributedDataParallel as DDP

    if env.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DDP(model, device_ids=[env.device.index])
    return DDP(model)


def _fully_shard(model: nn.Module) -> nn.Module:
    from torch.distributed.fsdp import fully_shard

    if not _has_shared_params(model):  # a tied weight must live in one FSDP unit: then shard the root only
        for child in model.children():
            if any(True for _ in child.parameters()):
                fully_shard(child)
    fully_shard(model)
    return model


def _has_shared_params(model: nn.Module) -> bool:
    seen = set()
    for _, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            return True
        seen.add(id(p))
    return False


# ---- state across ranks ----------------------------------------------------------------------
def full_state(model: nn.Module, optimizer, env: Env) -> tuple[dict, dict]:
    """(model state_dict, optimizer state_dict), whole (gathered under FSDP: a collective), on CPU.

    The optimizer state is keyed by parameter name, so a checkpoint resumes under any strategy
    and number of processes.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=env.distributed)
    model_state, optimizer_state = get_state_dict(model, optimizer, options=options)
    return _cpu(model_state), optimizer_state


def load_optimizer(model: nn.Module, optimizer, state: dict, env: Env) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def all_sum(values: list[float], env: Env) -> list[float]:
    if not env.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=_comm_device(env))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_min(value: int, env: Env) -> int:
    if not env.distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=_comm_device(env))
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def gather(obj, env: Env) -> list:
    if not env.distributed:
        return [obj]
    out = [None] * env.world
    dist.all_gather_object(out, obj)
    return out


def _comm_device(env: Env) -> torch.device:
    return env.device if env.device.type == "cuda" else torch.device("cpu")
