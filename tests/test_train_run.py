"""Training runs: the digits demo, exact resume (also after SIGKILL), DDP/FSDP vs one process,
gradient accumulation, NaN handling, and the Lightning engine."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
import specc.exporters
from specc.cli import main
from specc.errors import SpecError, UsageError

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "specs" / "digits_cnn.dlspec"
ENV = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}

# an MLP with BatchNorm and Dropout: the RNG and buffers must come back exactly on resume
TINY = """spec 1

model Tiny {
  input x: float32[N, 12]
  y = x |> fc1: Linear(32) |> BatchNorm1d |> ReLU |> Dropout(0.3) |> fc2: Linear(3)
  output y
}

train {
  data synthetic { samples = SAMPLES, val_fraction = 0.2, classes = 3 }
  targets { label = int64[N] }
  loss cross_entropy { label_smoothing = 0.1 }
  optimizer AdamW { lr = 0.01, weight_decay = 0.01 }
  schedule cosine { warmup_epochs = 1 }
  checkpoints { every_steps = 3, keep_last = 1000 }
  epochs = EPOCHS
  batch_size = 16
  metrics = [accuracy, f1]
}
"""

# no BatchNorm, no dropout: 1 process and N processes compute the same thing
LINEAR = """spec 1

model Linear2 {
  input x: float32[N, 16]
  y = x |> fc1: Linear(32) |> ReLU |> fc2: Linear(4)
  output y
}

train {
  data synthetic { samples = 200, val_fraction = 0.2 }
  targets { label = int64[N] }
  loss cross_entropy {}
  optimizer SGD { lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.001 }
  schedule linear { end_factor = 0.5 }
  epochs = 2
  batch_size = 16
  metrics = [accuracy]
}
"""


def write(tmp_path: Path, text: str, name: str = "spec.dlspec", **subs) -> Path:
    for key, value in subs.items():
        text = text.replace(key, str(value))
    path = tmp_path / name
    path.write_text(text)
    return path


def final_weights(run: Path) -> dict:
    last = sorted((run / "checkpoints").glob("step-*.pt"))[-1]
    return torch.load(last, map_location="cpu", weights_only=True)["model"]


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


# ---- the main demo --------------------------------------------------------------------------------
def test_specc_train_digits(tmp_path, capsys):
    out = tmp_path / "digits"
    exports = hasattr(specc.exporters, "export_targets")
    if exports:
        assert main(["train", str(DIGITS), "--out", str(out), "--set", "train.epochs=2"]) == 0
    else:  # the exporters are not there yet: train through the API
        specc.compile(DIGITS).train(out_dir=out, epochs=2, verbose=False)
    history = records(out)
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[-1]["val/accuracy"] >= 0.90
    assert {"train/loss", "val/loss", "lr", "time", "samples_per_s"} <= history[-1].keys()
    best = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert best["metrics"]["val/accuracy"] == max(r["val/accuracy"] for r in history)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["epoch"] == 2
    if exports:
        assert (out / "model.onnx").exists()
        assert "onnx" in capsys.readouterr().out
    assert main(["plot", str(out)]) == 0
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(out), "--out", str(out / "elsewhere.png")]) == 0  # --out, as every command has
    assert (out / "elsewhere.png").is_file()


def test_lightning_engine_trains_digits_and_resumes(tmp_path):
    metrics = specc.compile(DIGITS).train(out_dir=tmp_path / "light", engine="lightning", epochs=2, verbose=False)
    assert metrics["val/accuracy"] >= 0.90
    assert [r["epoch"] for r in records(tmp_path / "light")] == [1, 2]
    last = tmp_path / "light" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1  # Lightning counts from 0
    specc.compile(DIGITS).train(out_dir=tmp_path / "light", engine="lightning", epochs=3, resume=True, verbose=False)
    assert [r["epoch"] for r in records(tmp_path / "light")] == [1, 2, 3]
    assert main(["build", str(DIGITS), "-o", str(tmp_path / "build"), "--weights", str(last)]) == 0
    from safetensors.torch import load_file
    trained = torch.load(last, weights_only=True)["state_dict"]
    assert all(torch.equal(trained[f"model.{k}"], v) for k, v in load_file(tmp_path / "build" / "model.safetensors").items())


# ---- reproducibility and resume ---------------------------------------------------------------------
def test_same_seed_same_weights_and_api_overrides(tmp_path):
    spec = write(tmp_path, TINY, SAMPLES=120, EPOCHS=2)
    compiled = specc.compile(spec)
    first = compiled.train(out_dir=tmp_path / "a", verbose=False, **{"optimizer.lr": 0.02})
    torch.manual_seed(123)  # whatever happened to the global RNG, the seed decides
    second = specc.compile(spec).train(out_dir=tmp_path / "b", verbose=False, **{"optimizer.lr": 0.02})
    assert first == {**second, "time": first["time"], "train_time": first["train_time"],
                     "samples_per_s": first["samples_per_s"]}
    assert equal(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"))
    assert torch.load(sorted((tmp_path / "a" / "checkpoints").glob("step-*"))[-1],
                      weights_only=True)["train"]["optimizer"]["lr"] == 0.02
    third = specc.compile(spec).train(out_dir=tmp_path / "c", verbose=False, seed=1, **{"optimizer.lr": 0.02})
    assert third["val/loss"] != first["val/loss"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with a checkpoint every 3 optimizer steps (10 steps per epoch)."""
    base = tmp_path_factory.mktemp("reference")
    spec = write(base, TINY, SAMPLES=200, EPOCHS=4)
    specc.compile(spec).train(out_dir=base / "run", verbose=False)
    return spec, base / "run"


def test_resume_mid_epoch_is_exact(reference, tmp_path):
    spec, ref = reference
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(ref / "checkpoints" / "step-00000015.pt", run / "checkpoints")  # epoch 2, batch 5
    shutil.copy(ref / "metrics.jsonl", run / "metrics.jsonl")
    with pytest.raises(UsageError, match="unfinished run"):
        specc.compile(spec).train(out_dir=run, verbose=False)
    specc.compile(spec).train(out_dir=run, resume=True, verbose=False)
    assert equal(final_weights(run), final_weights(ref))
    assert [(r["epoch"], r["train/loss"], r["val/loss"]) for r in records(run)] == \
        [(r["epoch"], r["train/loss"], r["val/loss"]) for r in records(ref)]


@pytest.fixture
def one_thread():
    """Runs compared bit for bit must use the same number of threads (the subprocesses get OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield {**ENV, "OMP_NUM_THREADS": "1"}
    torch.set_num_threads(threads)


def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path, one_thread):
    spec = write(tmp_path, TINY.replace("every_steps = 3, keep_last = 1000", "every_steps = 7"),
                 SAMPLES=400, EPOCHS=30)  # 20 optimizer steps per epoch, 600 in all
    reference = tmp_path / "reference"
    specc.compile(spec).train(out_dir=reference, verbose=False)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "specc", "train", str(spec), "--out", str(killed)],
                            env=one_thread, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            steps = [int(p.stem[5:]) for p in (killed / "checkpoints").glob("step-*.pt")]
            if any(s >= 60 and s % 20 for s in steps):  # a mid-epoch checkpoint after epoch 3
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert main(["train", str(spec), "--out", str(killed), "--resume"]) == 0
    assert equal(final_weights(killed), final_weights(reference))
    assert [r["epoch"] for r in records(killed)] == list(range(1, 31))
    assert [r["val/loss"] for r in records(killed)] == [r["val/loss"] for r in records(reference)]


def test_sigterm_stops_the_run_with_a_message_and_no_temp_file_then_it_resumes(tmp_path, one_thread):
    """SIGTERM (a scheduler, `kill`) used to end the process at once, silently, leaving the temp
    file of a checkpoint being written."""
    spec = write(tmp_path, TINY, SAMPLES=400, EPOCHS=30)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "specc", "train", str(spec), "--out", str(out)],
                            env=one_thread, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list(out.glob("checkpoints/*.pt"))) < 5:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.endswith("specc: terminated\n") and "Traceback" not in err
    assert not [p.name for p in (out / "checkpoints").iterdir() if not p.name.endswith(".pt")]
    assert main(["train", str(spec), "--out", str(out), "--resume", "--set", "train.epochs=3"]) == 0


def test_an_interrupt_during_a_checkpoint_write_takes_effect_once_it_is_whole(tmp_path, monkeypatch):
    from specc.train import checkpoint

    write_checkpoint = torch.save

    def interrupted_half_way(state, fh):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C
        write_checkpoint(state, fh)
    monkeypatch.setattr(torch, "save", interrupted_half_way)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / "step-00000001.pt", {"w": torch.ones(3)})
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000001.pt"]
    assert torch.equal(torch.load(tmp_path / "step-00000001.pt", weights_only=True)["w"], torch.ones(3))


# ---- scale-out and accumulation ---------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, strategy):
    """... and the export after training verifies (FSDP's sharded model needed the other processes,
    which had ended)."""
    spec = write(tmp_path, LINEAR)
    specc.compile(spec).train(out_dir=tmp_path / "one", verbose=False)
    subprocess.run([sys.executable, "-m", "specc", "train", str(spec), "--out", str(tmp_path / "two"),
                    "--nproc", "2", "--set", f"train.strategy={strategy}", "--export", "onnx"],
                   env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert max_diff(one, two) < 1e-5
    manifest = json.loads((tmp_path / "two" / "model.onnx.manifest.json").read_text())
    assert manifest["verification"]["passed"]
    assert records(tmp_path / "two")[-1]["step"] == 20  # 2 epochs of 10 global batches


def test_gradient_accumulation_matches_a_bigger_batch(tmp_path):
    spec = write(tmp_path, LINEAR)
    specc.compile(spec).train(out_dir=tmp_path / "big", verbose=False)
    specc.compile(spec).train(out_dir=tmp_path / "acc", verbose=False, batch_size=8, accumulate=2)
    assert max_diff(final_weights(tmp_path / "big"), final_weights(tmp_path / "acc")) < 1e-6


def test_bf16_on_cpu_and_worker_processes(tmp_path):
    spec = write(tmp_path, LINEAR)
    metrics = specc.compile(spec).train(out_dir=tmp_path / "bf16", verbose=False, precision="bf16", epochs=1,
                                        **{"data.workers": 1})
    assert np.isfinite(metrics["train/loss"]) and np.isfinite(metrics["val/loss"])


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SpecError) as err:
        specc.compile(write(tmp_path, LINEAR)).train(out_dir=tmp_path / "x", verbose=False, precision="fp16")
    (d,) = err.value.diagnostics
    assert d.message == "precision fp16 needs a CUDA device (this run is on cpu)"
    assert d.span.file == "<train(...)>"


# ---- failures -------------------------------------------------------------------------------------
def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(200, 16)).astype("float32")
    x[113] = 3e38  # finite, but the loss overflows: sample 113 is in batch 12 of the first epoch (no shuffling)
    np.savez(tmp_path / "data.npz", x=x, label=np.arange(200) % 4)
    spec = write(tmp_path, LINEAR.replace("data synthetic { samples = 200, val_fraction = 0.2 }",
                                          'data npz { path = "data.npz", val_fraction = 0, shuffle = false }')
                 .replace("batch_size = 16", "batch_size = 10\n  checkpoints { every_steps = 5 }"))
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E0703]: training diverged: the loss is not finite at epoch 1, step 12 (batch 12 of 20" in err
    assert f"the last good checkpoint is {out / 'checkpoints' / 'step-00000010.pt'}" in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000005.pt", "step-00000010.pt"]
    state = torch.load(out / "checkpoints" / "step-00000010.pt", weights_only=True)
    assert state["position"] == {"epoch": 0, "batch": 10, "step": 10}
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_new_run_that_fails_to_start_keeps_the_finished_run(tmp_path, capsys):
    """The folder's finished run is replaced only once the new run is set up (here its data is bad)."""
    spec = write(tmp_path, TINY, SAMPLES=64, EPOCHS=1)
    out = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(out)]) == 0
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    header = ",".join(f"f{i}" for i in range(12))
    (tmp_path / "data.csv").write_text(f"{header},y\n" + "".join(f"{'0.5,' * 12}{i % 3}\n" for i in range(40))
                                       + f"{'oops,' * 12}1\n")  # found when the data is read, not by the plan
    broken = write(tmp_path, TINY.replace("data synthetic { samples = SAMPLES, val_fraction = 0.2, classes = 3 }",
                                          'data csv { path = "data.csv", inputs { x = "*" }, targets { label = "y" } }'),
                   name="broken.dlspec", EPOCHS=1)
    assert main(["train", str(broken), "--out", str(out)]) != 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == kept
    assert (out / "summary.json").exists()


def _unfinished(done: Path, folder: Path, steps=(3, 6, 9)) -> Path:
    """An unfinished run in `folder`: the finished run's checkpoints at `steps`, no summary."""
    (folder / "checkpoints").mkdir(parents=True)
    for step in steps:
        shutil.copy(done / "checkpoints" / f"step-{step:08d}.pt", folder / "checkpoints")
    return folder


def test_resume_skips_a_damaged_checkpoint_for_the_newest_good_one(reference, tmp_path, capsys):
    spec, done = reference
    run = _unfinished(done, tmp_path / "run")
    (run / "checkpoints" / "step-00000009.pt").write_bytes(b"")  # torn
    (run / "checkpoints" / "step-00000012.pt").write_bytes(os.urandom(300))
    specc.compile(spec).train(out_dir=run, resume=True)
    out = capsys.readouterr().out
    assert f"note: skipping {run / 'checkpoints' / 'step-00000012.pt'}: step-00000012.pt cannot be read" in out
    assert f"resuming from {run / 'checkpoints' / 'step-00000006.pt'}" in out
    assert equal(final_weights(run), final_weights(done))


def test_resume_with_no_readable_checkpoint_is_a_usage_error(reference, tmp_path):
    spec, done = reference
    run = _unfinished(done, tmp_path / "run", steps=())
    torch.save({"format": 1, "model": {}}, run / "checkpoints" / "step-00000001.pt")  # best.pt-like: no position
    with pytest.raises(UsageError, match="no checkpoint there can be read .step-00000001.pt is not a complete "
                                         "training checkpoint .it has no optimizer"):
        specc.compile(spec).train(out_dir=run, resume=True, verbose=False)


def test_resume_refuses_changed_optimizer_settings_and_notes_other_changes(reference, tmp_path, capsys):
    spec, done = reference
    run = _unfinished(done, tmp_path / "run")
    with pytest.raises(UsageError, match=r"optimizer.lr \(0.01 -> 1e-06\) changed since it was written"):
        specc.compile(spec).train(out_dir=run, resume=True, verbose=False, **{"optimizer.lr": 1e-6})
    with pytest.raises(UsageError, match=r"optimizer.kind \(AdamW -> SGD\)"):
        specc.compile(spec).train(out_dir=run, resume=True, verbose=False, optimizer={"kind": "SGD", "lr": 0.01})
    specc.compile(spec).train(out_dir=run, resume=True, epochs=5)
    assert "note: resuming with changed settings: epochs (4 -> 5)" in capsys.readouterr().out
    assert [r["epoch"] for r in records(run)] == [1, 2, 3, 4, 5]


def test_early_stop_on_a_value_that_was_never_finite_says_so():
    from specc.train.plan import Monitor
    from specc.train.trainer import Watch
    watch = Watch(Monitor("val/loss", "min", patience=1))
    watch.update({"val/loss": float("nan")})
    assert watch.stop_message() == "early stop: val/loss has not improved for 1 epochs (it was never finite)"
    watch.update({"val/loss": 0.5})
    assert watch.stop_message().endswith("(best 0.5000)")


def test_a_misspelt_export_target_fails_before_training(tmp_path, capsys):
    spec = write(tmp_path, TINY, SAMPLES=64, EPOCHS=1)
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--export", "onx"]) == 2
    assert "did you mean `onnx`?" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_export_target_this_machine_lacks_fails_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-compilers-here"))
    monkeypatch.delenv("CXX", raising=False)
    spec = write(tmp_path, TINY, SAMPLES=64, EPOCHS=1)
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--export", "aoti"]) == 1
    assert "error[E0803]: the aoti target needs a C++ compiler" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    spec.write_text(spec.read_text() + "\nexport {\n  aoti {}\n}\n")  # the spec's own section: the same
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    assert "error[E0803]: the aoti target needs a C++ compiler" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_model_picks_one_model_of_several(tmp_path, capsys):
    spec = write(tmp_path, LINEAR.replace("model Linear2 {", "model Other {\n  input x: float32[N, 16]\n"
                                          "  y = x |> head: Linear(4)\n  output y\n}\n\nmodel Linear2 {"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 2  # which model: a usage error
    assert "--model" in capsys.readouterr().err
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--model", "Other"]) == 0
    assert set(final_weights(tmp_path / "run")) == {"head.weight", "head.bias"}


def test_metrics_lines_that_are_not_records_are_skipped(tmp_path):
    """Resume and plot read them: bytes that are not UTF-8, or an epoch that is no number, crashed both."""
    from specc.train.progress import read_metrics
    (tmp_path / "metrics.jsonl").write_bytes(b'{"epoch": 1, "lr": "x"}\n[1]\n"x"\n\xff\xfe\n{"epoch": null}\n'
                                             b'{"epoch": true}\n{"epoch": 2, "lr": 0.1}\n{"epo')
    assert read_metrics(tmp_path) == [{"epoch": 1, "lr": "x"}, {"epoch": 2, "lr": 0.1}]
    assert main(["plot", str(tmp_path)]) == 0


def test_a_batch_that_does_not_split_over_the_processes_fails_before_torchrun(tmp_path, capsys, monkeypatch):
    from specc.train import distributed
    monkeypatch.setattr(distributed, "relaunch", lambda *a: pytest.fail("torchrun was started"))
    spec = write(tmp_path, LINEAR.replace("batch_size = 16", "batch_size = 15"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--nproc", "2"]) == 1
    assert capsys.readouterr().err.count("batch_size 15 is the global batch and must split evenly over 2") == 1


def test_a_new_run_removes_the_finished_runs_exports(reference, tmp_path):
    """They hold the old run's weights; a file specc did not make (no manifest) stays."""
    spec, done = reference
    run = tmp_path / "run"
    shutil.copytree(done, run)
    for name in ("model.onnx", "model.onnx.manifest.json", "model.onnx.data", "model.pt2"):
        (run / name).write_text("from the finished run")
    specc.compile(spec).train(out_dir=run, epochs=1, verbose=False)
    assert not (run / "model.onnx").exists() and not (run / "model.onnx.manifest.json").exists()
    assert not (run / "model.onnx.data").exists() and (run / "model.pt2").exists()


def test_resuming_a_finished_run_for_more_epochs_removes_exports_it_does_not_redo(tmp_path, capsys):
    spec = write(tmp_path, TINY, SAMPLES=64, EPOCHS=1)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    for name in ("model.pt2", "model.pt2.manifest.json"):
        (run / name).write_text("exported from epoch 1's weights")
    assert main(["train", str(spec), "--out", str(run), "--resume"]) == 0  # nothing more to train: kept
    assert (run / "model.pt2").exists()
    assert main(["train", str(spec), "--out", str(run), "--resume", "--set", "train.epochs=2"]) == 0
    assert f"note: removed {run / 'model.pt2'}, exported from the run's earlier weights" in capsys.readouterr().err
    assert not (run / "model.pt2").exists() and not (run / "model.pt2.manifest.json").exists()


def test_both_engines_guard_a_run_folder_alike(reference, tmp_path):
    spec, done = reference
    run = _unfinished(done, tmp_path / "specc_run")
    with pytest.raises(UsageError, match="holds a run of the specc engine .step-00000009.pt."):
        specc.compile(spec).train(out_dir=run, engine="lightning", resume=True, verbose=False)
    with pytest.raises(UsageError, match="holds an unfinished run"):
        specc.compile(spec).train(out_dir=run, engine="lightning", verbose=False)
    light = tmp_path / "light"
    specc.compile(spec).train(out_dir=light, engine="lightning", epochs=1, verbose=False)
    specc.compile(spec).train(out_dir=light, engine="lightning", epochs=1, verbose=False)  # a finished run: replaced
    (light / "summary.json").unlink()  # as if it had been interrupted
    with pytest.raises(UsageError, match="holds an unfinished run"):
        specc.compile(spec).train(out_dir=light, engine="lightning", epochs=1, verbose=False)
    with pytest.raises(UsageError, match="holds an unfinished run"):  # the specc engine guards it too
        specc.compile(spec).train(out_dir=light, epochs=1, verbose=False)
    with pytest.raises(UsageError, match="holds a run of the lightning engine .last.ckpt.: resume it with "
                                         'engine = "lightning"'):
        specc.compile(spec).train(out_dir=light, epochs=1, resume=True, verbose=False)


def test_an_error_met_by_every_process_is_reported_once_without_a_launcher_traceback(tmp_path):
    header = ",".join(f"f{i}" for i in range(16))
    (tmp_path / "data.csv").write_text(f"{header},y\n" + f"{'0.5,' * 16}1\n" * 40 + f"{'oops,' * 16}1\n")
    spec = write(tmp_path, LINEAR.replace("data synthetic { samples = 200, val_fraction = 0.2 }",
                                          'data csv { path = "data.csv", inputs { x = "*" }, targets { label = "y" } }'))
    result = subprocess.run([sys.executable, "-m", "specc", "train", str(spec), "--out", str(tmp_path / "run"),
                             "--nproc", "2"], env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("error[E0702]: column `f0` of data.csv has a non-number 'oops' on line 42") == 1
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr


def test_an_early_stopped_run_resumed_with_more_patience_goes_on(tmp_path, capsys):
    spec = write(tmp_path, TINY.replace("epochs = EPOCHS", "epochs = 4\n  early_stop { patience = 1, min_delta = 100 }"),
                 SAMPLES=64)
    run = tmp_path / "run"
    specc.compile(spec).train(out_dir=run, verbose=False)
    assert [r["epoch"] for r in records(run)] == [1, 2]  # epoch 2 did not improve val/loss by 100
    specc.compile(spec).train(out_dir=run, resume=True, verbose=False)  # the same settings: still stopped
    assert [r["epoch"] for r in records(run)] == [1, 2]
    specc.compile(spec).train(out_dir=run, resume=True, **{"early_stop.patience": 5})
    assert "note: resuming with changed settings: early_stop.patience (1 -> 5)" in capsys.readouterr().out
    assert [r["epoch"] for r in records(run)] == [1, 2, 3, 4]


def test_nproc_puts_back_the_callers_signal_handlers_and_environment(tmp_path, monkeypatch):
    """torchrun's agent runs in the calling process: what it changes there is undone after the run."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    environ = dict(os.environ)
    spec = write(tmp_path, LINEAR.replace("epochs = 2", "epochs = 1"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--nproc", "2"]) == 0
    assert records(tmp_path / "run")[-1]["epoch"] == 1
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    assert dict(os.environ) == environ


# ---- review of the training engine --------------------------------------------------------------
def test_resume_mid_epoch_with_worker_processes_is_exact(tmp_path):
    """DataLoader workers must not draw from the global RNG, or dropout's masks shift after a resume."""
    spec = write(tmp_path, TINY.replace("classes = 3 }", "classes = 3, workers = 2 }")
                 .replace("metrics = [accuracy, f1]", "metrics = [accuracy]"), SAMPLES=200, EPOCHS=2)
    specc.compile(spec).train(out_dir=tmp_path / "ref", verbose=False)
    run = _unfinished(tmp_path / "ref", tmp_path / "run", steps=(15,))  # epoch 2, batch 5
    shutil.copy(tmp_path / "ref" / "metrics.jsonl", run)
    specc.compile(spec).train(out_dir=run, resume=True, verbose=False)
    assert equal(final_weights(run), final_weights(tmp_path / "ref"))
    assert records(run)[-1]["val/loss"] == records(tmp_path / "ref")[-1]["val/loss"]


def lightning_weights(run: Path) -> dict:
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items()}


@pytest.mark.parametrize("settings", [{}, {"batch_size": 8, "accumulate": 3}])  # 20 batches: a last group of 2
def test_lightning_ends_with_the_specc_engines_weights(tmp_path, one_thread, settings):
    """last.ckpt holds the last epoch (also when val/loss did not improve: LINEAR's rises in epoch 2), and a
    partial accumulation group is weighted by samples on both engines."""
    spec = write(tmp_path, LINEAR)
    specc.compile(spec).train(out_dir=tmp_path / "specc", verbose=False, **settings)
    specc.compile(spec).train(out_dir=tmp_path / "light", verbose=False, engine="lightning", **settings)
    assert equal(lightning_weights(tmp_path / "light"), final_weights(tmp_path / "specc"))
    assert [r["step"] for r in records(tmp_path / "light")] == [r["step"] for r in records(tmp_path / "specc")]


def test_lightning_early_stopping_counts_nan_as_not_improved(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping

    from specc.train.lightning_engine import _callbacks
    spec = write(tmp_path, LINEAR.replace("epochs = 2", "epochs = 2\n  early_stop { patience = 2 }"))
    plan = specc.compile(spec).plan
    (stopper,) = [c for c in _callbacks(plan, tmp_path, None, 1) if isinstance(c, EarlyStopping)]
    assert stopper._evaluate_stopping_criteria(torch.tensor(0.5))[0] is False
    assert stopper._evaluate_stopping_criteria(torch.tensor(float("nan")))[0] is False  # 1 bad epoch of 2
    assert stopper._evaluate_stopping_criteria(torch.tensor(float("nan")))[0] is True


def test_best_pt_is_written_before_the_checkpoint_that_records_it(tmp_path, monkeypatch):
    """A full disk while best.pt is written: the resumed run still ends with best.pt matching the summary."""
    from specc.train.checkpoint import Checkpoints
    spec = write(tmp_path, TINY.replace("every_steps = 3, keep_last = 1000", 'monitor = "train/loss"'),
                 SAMPLES=64, EPOCHS=2)
    save_best = Checkpoints.save_best

    def full_at_epoch_2(self, model_state, info):
        if info["epoch"] == 2:
            raise OSError(28, "No space left on device", str(self.best_path))
        return save_best(self, model_state, info)
    monkeypatch.setattr(Checkpoints, "save_best", full_at_epoch_2)
    with pytest.raises(OSError, match="No space left"):
        specc.compile(spec).train(out_dir=tmp_path / "run", verbose=False)
    monkeypatch.setattr(Checkpoints, "save_best", save_best)
    specc.compile(spec).train(out_dir=tmp_path / "run", resume=True, verbose=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert best["metrics"]["train/loss"] == summary["best"]["value"] == min(r["train/loss"] for r in records(tmp_path / "run"))


def test_a_full_disk_during_a_checkpoint_names_it_without_a_traceback(tmp_path):
    import resource

    def small_files():  # writes past 10 kB fail with EFBIG, as on a full disk (ENOSPC)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
    spec = write(tmp_path, TINY, SAMPLES=200, EPOCHS=1)
    result = subprocess.run([sys.executable, "-m", "specc", "train", str(spec), "--out", str(tmp_path / "run")],
                            env=ENV, capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    assert result.returncode == 2
    assert result.stderr == f"specc: error: [Errno 27] File too large: '{tmp_path / 'run' / 'checkpoints' / 'step-00000003.pt'}'\n"
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []  # no temp file left behind


# ---- review of resume, multi-node and TensorBoard -------------------------------------------------
def test_resume_moves_damaged_newer_checkpoints_aside_so_keep_last_counts_only_good_ones(reference, tmp_path, capsys):
    """keep_last kept the damaged step-50 (the newest by number) and deleted every good checkpoint the
    resumed run wrote: the run could not be resumed again. Nothing the user had is deleted."""
    spec, done = reference
    run = _unfinished(done, tmp_path / "run")
    folder = run / "checkpoints"
    (folder / "step-00000050.pt").write_bytes((folder / "step-00000009.pt").read_bytes()[:1000])
    (folder / "step-00000050.pt.damaged").write_text("set aside by an earlier resume")
    keep_one = {"checkpoints.keep_last": 1}
    specc.compile(spec).train(out_dir=run, resume=True, **keep_one)
    assert f"note: moved the unreadable step-00000050.pt aside to {folder / 'step-00000050.pt.damaged-2'}" in \
        capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == \
        ["best.pt", "step-00000040.pt", "step-00000050.pt.damaged", "step-00000050.pt.damaged-2"]
    assert json.loads((run / "summary.json").read_text())["last_checkpoint"] == str(folder / "step-00000040.pt")
    assert equal(final_weights(run), final_weights(done))
    specc.compile(spec).train(out_dir=run, resume=True, verbose=False, epochs=5, **keep_one)
    assert sorted(p.name for p in folder.glob("*.pt")) == ["best.pt", "step-00000050.pt"]  # the good step 50


WORKER = """import os, sys
from specc.cli import main
spec, mine, other = sys.argv[1:]
code = main(["train", spec, "--out", mine if os.environ["RANK"] == "0" else other, "--resume"])
print(f"rank {os.environ['RANK']} exit {code}", flush=True)
sys.exit(code)
"""


def test_ranks_that_see_different_run_folders_stop_with_one_usage_error(reference, tmp_path):
    """Two nodes without shared storage: rank 1 saw an empty folder, took the fresh-start way alone,
    and the collectives no longer matched (an internal error, or a hang)."""
    spec, done = reference
    run = _unfinished(done, tmp_path / "run")
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             str(worker), str(spec), str(run), str(tmp_path / "elsewhere")],
                            env={**ENV, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert "rank 0 exit 2" in result.stdout and "rank 1 exit 2" in result.stdout, result.stderr
    assert result.stderr.count(f"specc: error: the processes see different run folders at {run}: rank 0 sees "
                               "3 checkpoint files (the last step-00000009.pt), rank 1 sees no checkpoint; "
                               "--out must be on storage every node shares") == 1, result.stderr
    assert "internal error" not in result.stderr
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step-0000000{i}.pt" for i in (3, 6, 9)]
    assert not (tmp_path / "elsewhere").exists()


def test_a_replaced_run_takes_its_tensorboard_logs_along_and_a_refused_start_writes_none(tmp_path, monkeypatch):
    """tensorboard is optional: a stand-in writer makes an event file per run, as SummaryWriter does."""
    from itertools import count

    from specc.train import progress
    numbers = count()

    class Writer:
        def __init__(self, run_dir: Path):
            (run_dir / "tensorboard").mkdir(parents=True, exist_ok=True)
            self.path = run_dir / "tensorboard" / f"events.{next(numbers)}"
            self.path.touch()

        def add_scalar(self, key, value, step):
            with open(self.path, "a") as fh:
                fh.write(f"{key} {step} {value}\n")

        flush = close = lambda self: None
    monkeypatch.setattr(progress, "_tensorboard", Writer)
    spec = write(tmp_path, TINY, SAMPLES=64, EPOCHS=1)
    run = tmp_path / "run"
    specc.compile(spec).train(out_dir=run, verbose=False)
    specc.compile(spec).train(out_dir=run, verbose=False)  # replaces the finished run
    assert [p.name for p in (run / "tensorboard").iterdir()] == ["events.1"]
    assert "val/accuracy 1 " in (run / "tensorboard" / "events.1").read_text()
    (run / "summary.json").unlink()  # an unfinished run: a new one is refused
    with pytest.raises(UsageError, match="holds an unfinished run"):
        specc.compile(spec).train(out_dir=run, verbose=False)
    assert [p.name for p in (run / "tensorboard").iterdir()] == ["events.1"]


@pytest.mark.parametrize("engine", ["specc", "lightning"])
def test_a_training_split_too_small_for_batchnorm_is_refused_before_training(engine, tmp_path, capsys):
    spec = write(tmp_path, TINY, SAMPLES=2, EPOCHS=1)  # val_fraction 0.2 of 2 leaves 1 training sample
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--set", f"train.engine={engine}"]) == 1
    err = capsys.readouterr().err
    assert "error[E0702]: the training split has 1 sample: too few for a batch of 2 per process" in err
    assert "Traceback" not in err and not (tmp_path / "run" / "checkpoints").exists()
