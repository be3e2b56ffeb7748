"""The Lightning engine keeps the specc engine's contract: digits_cnn reaches the accuracy bar, a diverged
run stops with E0703 and no non-finite checkpoint, --resume is exact (dropout included) and refuses a
damaged or changed checkpoint in words, settings this machine cannot run are the specc engine's located
errors, torchrun's processes run DDP as --nproc's do, and val/loss over several processes is the mean
over all validation samples."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import specc
from specc.cli import main
from specc.errors import UsageError
from specc.train import lightning_engine
from test_train_run import DIGITS, ENV, LINEAR, TINY, equal, lightning_weights, records, write

# the learning rate is multiplied by 1e30 after epoch 1: the loss overflows early in epoch 2
EXPLODING = LINEAR.replace("schedule linear { end_factor = 0.5 }", "schedule step { step_epochs = 1, gamma = 1e30 }")
TIMES = ("time", "train_time", "samples_per_s")  # the parts of a record that vary from run to run


def lightning(spec: Path, out: Path, *extra: str) -> int:
    return main(["train", str(spec), "--out", str(out), "--set", "train.engine=lightning", *extra])


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMES} for record in history]


def checkpoint(run: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)


def all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())


# ---- the digits demo --------------------------------------------------------------------------------
def test_digits_cnn_reaches_the_acceptance_bar(tmp_path):
    """The spec as written (early stopping ends it after about 6 epochs, a few seconds)."""
    metrics = specc.compile(DIGITS).train(out_dir=tmp_path / "run", engine="lightning", verbose=False)
    assert metrics["val/accuracy"] >= 0.97


# ---- settings this machine cannot run -----------------------------------------------------------------
@pytest.mark.parametrize("settings", [
    pytest.param(["--set", "train.precision=fp16"], marks=pytest.mark.skipif(torch.cuda.is_available(),
                                                                            reason="this machine has CUDA")),
    ["--nproc", "3"],  # batch_size 16
])
def test_what_the_specc_engine_refuses_is_refused_in_the_same_words(tmp_path, capsys, monkeypatch, settings):
    monkeypatch.setattr(lightning_engine.L.Trainer, "fit", lambda *a, **k: pytest.fail("the run started"))
    spec = write(tmp_path, LINEAR)
    assert main(["train", str(spec), "--out", str(tmp_path / "specc"), *settings]) == 1
    specc_error = capsys.readouterr().err
    assert specc_error.startswith("error[E0701]: ")
    # the engine's --set last: the located one is the first --set, as on the specc engine
    assert main(["train", str(spec), "--out", str(tmp_path / "light"), *settings,
                 "--set", "train.engine=lightning"]) == 1
    assert capsys.readouterr().err == specc_error
    assert not (tmp_path / "light").exists()


# ---- divergence -----------------------------------------------------------------------------------
def test_a_diverged_run_stops_with_e0703_as_the_specc_engine_does(tmp_path, capsys):
    spec = write(tmp_path, EXPLODING)
    assert main(["train", str(spec), "--out", str(tmp_path / "specc")]) == 1
    specc_error = capsys.readouterr().err
    out = tmp_path / "light"
    assert lightning(spec, out, "--export", "onnx") == 1
    error = capsys.readouterr().err
    assert "error[E0703]: training diverged: the loss is not finite at epoch 2, step 12 (batch 2 of 10 in the epoch)" \
        in error
    assert f"the last good checkpoint is {out / 'checkpoints' / 'last.ckpt'}" in error
    assert error == specc_error.replace(str(tmp_path / "specc" / "checkpoints" / "step-00000010.pt"),
                                        str(out / "checkpoints" / "last.ckpt"))
    assert checkpoint(out)["epoch"] == 0 and all_finite(checkpoint(out)) and all_finite(checkpoint(out, "best.ckpt"))
    assert [r["epoch"] for r in records(out)] == [1]
    assert records(out)[0]["val/loss"] == records(tmp_path / "specc")[0]["val/loss"]  # summed as specc sums it
    assert not (out / "summary.json").exists() and not (out / "model.onnx").exists()


def test_weights_that_are_not_finite_stop_the_run_before_its_checkpoint(tmp_path, monkeypatch, capsys):
    def poison_the_last_batch_of_epoch_2(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == 1 and batch_idx == trainer.num_training_batches - 1:
            with torch.no_grad():
                module.model.fc1.weight[0, 0] = float("inf")
    # Records is the first callback: it poisons the weights before the check on the same batch
    monkeypatch.setattr(lightning_engine.Records, "on_train_batch_end", poison_the_last_batch_of_epoch_2)
    out = tmp_path / "run"
    assert lightning(write(tmp_path, LINEAR), out) == 1
    error = capsys.readouterr().err
    assert "error[E0703]: training diverged: the weights are not finite after step 20 (epoch 2)" in error
    assert f"the last good checkpoint is {out / 'checkpoints' / 'last.ckpt'}" in error
    assert checkpoint(out)["epoch"] == 0 and all_finite(checkpoint(out))


# ---- exact resume -----------------------------------------------------------------------------------
def test_resume_after_an_epoch_is_exact_with_dropout_and_keeps_the_clock(tmp_path, monkeypatch):
    """TINY has Dropout (the RNG states must come back) and BatchNorm; Ctrl-C comes after epoch 2's
    checkpoint, and 0.5 s spent before it must still count in the resumed epochs' `time`."""
    spec = write(tmp_path, TINY, SAMPLES=96, EPOCHS=4)
    specc.compile(spec).train(out_dir=tmp_path / "reference", engine="lightning", verbose=False)
    start_epoch = lightning_engine.Records.on_train_epoch_start

    def slow_epoch_2_then_ctrl_c(self, trainer, module):
        if trainer.current_epoch == 1:
            time.sleep(0.5)
        if trainer.current_epoch == 2:
            raise KeyboardInterrupt
        start_epoch(self, trainer, module)
    monkeypatch.setattr(lightning_engine.Records, "on_train_epoch_start", slow_epoch_2_then_ctrl_c)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        specc.compile(spec).train(out_dir=run, engine="lightning", verbose=False)
    assert [r["epoch"] for r in records(run)] == [1, 2]
    monkeypatch.setattr(lightning_engine.Records, "on_train_epoch_start", start_epoch)
    specc.compile(spec).train(out_dir=run, engine="lightning", resume=True, verbose=False)
    assert equal(lightning_weights(run), lightning_weights(tmp_path / "reference"))
    assert without_times(records(run)) == without_times(records(tmp_path / "reference"))
    times = [r["time"] for r in records(run)]
    assert times == sorted(times) and times[2] > 0.5


# ---- resuming a damaged or changed checkpoint ---------------------------------------------------------
@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished two-epoch Lightning run of TINY."""
    base = tmp_path_factory.mktemp("two_epochs")
    spec = write(base, TINY, SAMPLES=64, EPOCHS=2)
    specc.compile(spec).train(out_dir=base / "run", engine="lightning", verbose=False)
    return spec, base / "run"


def unfinished(done: Path, folder: Path) -> Path:
    """A copy of the run without its summary, as if it had been interrupted."""
    shutil.copytree(done, folder)
    (folder / "summary.json").unlink()
    return folder


def truncate(last: Path) -> None:
    last.write_bytes(last.read_bytes()[:1000])


def garbage(last: Path) -> None:
    last.write_bytes(b"\x80\x02}q\x00garbage" * 100)


def older_checkpoint(last: Path) -> None:
    """A Lightning checkpoint without specc's part (RNG states, settings)."""
    state = torch.load(last, weights_only=True)
    del state["specc"]
    torch.save(state, last)


@pytest.mark.parametrize(("damage", "message"), [
    (truncate, "it is damaged or cut short; start a new run with another --out"),
    (garbage, "; start a new run with another --out"),
    (older_checkpoint, r"it is not a complete specc training checkpoint \(it has no specc\)"),
])
def test_resume_from_a_damaged_checkpoint_names_it(two_epochs, tmp_path, capsys, damage, message):
    spec, done = two_epochs
    run = unfinished(done, tmp_path / "run")
    last = run / "checkpoints" / "last.ckpt"
    damage(last)
    assert lightning(spec, run, "--resume") == 2
    error = capsys.readouterr().err
    assert error.startswith(f"specc: error: cannot resume from {last}: ")
    assert re.search(message, error) and "Traceback" not in error


@pytest.mark.parametrize(("settings", "message"), [
    ({"optimizer.lr": 1e-6}, r"optimizer.lr \(0.01 -> 1e-06\) changed since it was written"),
    ({"optimizer": {"kind": "SGD", "lr": 0.01}}, r"optimizer.kind \(AdamW -> SGD\)"),
    ({"batch_size": 8}, r"batch_size \(16 -> 8\)"),
])
def test_resume_refuses_changed_optimizer_settings(two_epochs, tmp_path, settings, message):
    spec, done = two_epochs
    run = unfinished(done, tmp_path / "run")
    last = re.escape(str(run / "checkpoints" / "last.ckpt"))
    with pytest.raises(UsageError, match=f"cannot resume from {last}: .*{message}"):
        specc.compile(spec).train(out_dir=run, engine="lightning", resume=True, verbose=False, **settings)


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # the run was copied to another folder
def test_resume_refuses_a_changed_model_and_notes_other_changes(two_epochs, tmp_path, capsys):
    spec, done = two_epochs
    run = unfinished(done, tmp_path / "run")
    wider = write(tmp_path, spec.read_text().replace("Linear(32)", "Linear(33)"), name="wider.dlspec")
    with pytest.raises(UsageError, match="(?s)the checkpoint does not fit the model: .*size mismatch for fc1.weight"):
        specc.compile(wider).train(out_dir=run, engine="lightning", resume=True, verbose=False)
    specc.compile(spec).train(out_dir=run, engine="lightning", resume=True, epochs=3)
    out = capsys.readouterr().out
    assert "note: resuming with changed settings: epochs (2 -> 3)" in out
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in out
    assert [r["epoch"] for r in records(run)] == [1, 2, 3]


# ---- several processes ------------------------------------------------------------------------------
def test_val_loss_over_two_processes_is_the_mean_over_all_samples(tmp_path):
    """41 validation samples: batches of 16 and 25 (the merged tail) split 8+13 and 8+12 over the ranks."""
    spec = write(tmp_path, LINEAR.replace("samples = 200", "samples = 205"))
    specc.compile(spec).train(out_dir=tmp_path / "one", engine="lightning", verbose=False)
    subprocess.run([sys.executable, "-m", "specc", "train", str(spec), "--out", str(tmp_path / "two"), "--nproc", "2",
                    "--set", "train.engine=lightning"], env=ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=300)
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    assert [r["val/accuracy"] for r in one] == [r["val/accuracy"] for r in two]
    assert all(abs(a["val/loss"] - b["val/loss"]) < 1e-6 for a, b in zip(one, two, strict=True))


def test_torchrun_runs_ddp_over_its_processes_as_nproc_does(tmp_path):
    """TINY's BatchNorm normalises each process's slice on CPU: one process alone would train differently."""
    spec = write(tmp_path, TINY, SAMPLES=64, EPOCHS=2)
    command = ["-m", "specc", "train", str(spec), "--set", "train.engine=lightning", "--out"]
    subprocess.run([sys.executable, *command, str(tmp_path / "nproc"), "--nproc", "2"], env=ENV, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    torchrun = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                               *command, str(tmp_path / "torchrun")], env=ENV, check=True, capture_output=True,
                              text=True, timeout=300)
    assert torchrun.stdout.count("epoch 1/2") == 1  # rank 0 alone says it
    assert without_times(records(tmp_path / "torchrun")) == without_times(records(tmp_path / "nproc"))
    assert equal(lightning_weights(tmp_path / "torchrun"), lightning_weights(tmp_path / "nproc"))


def test_fsdp_without_cuda_is_a_located_error_before_anything_runs(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    spec = write(tmp_path, LINEAR)
    with pytest.raises(specc.SpecError) as err:
        specc.compile(spec).train(out_dir=tmp_path / "run", engine="lightning", strategy="fsdp", nproc=2, verbose=False)
    (d,) = err.value.diagnostics
    assert d.code == "E0701" and d.message.startswith('the Lightning engine runs strategy = "fsdp" on CUDA GPUs only')
    assert not (tmp_path / "run").exists()


def test_sigterm_ends_a_run_as_on_the_specc_engine(tmp_path):
    """Lightning caught the CLI's Terminated and exited; the run said "interrupted" (130)."""
    spec = write(tmp_path, TINY, SAMPLES=400, EPOCHS=200)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "specc", "train", str(spec), "--out", str(out), "--set",
                             "train.engine=lightning"], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (out / "metrics.jsonl").exists():
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.endswith("specc: terminated\n")


def test_a_device_this_machine_lacks_is_a_located_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(specc.SpecError) as err:
        specc.compile(write(tmp_path, LINEAR)).train(out_dir=tmp_path / "run", engine="lightning", device="cuda",
                                                     verbose=False)
    assert [(d.code, d.message) for d in err.value.diagnostics] == [("E0701", "device `cuda` is not available on "
                                                                              "this machine")]
