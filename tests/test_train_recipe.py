"""The recipe's pieces: schedules, parameter groups, losses and metrics."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from specc.schema.train import TrainConfig
from specc.train.losses import Objective
from specc.train.metrics import Metrics
from specc.train.optim import make_optimizer, make_schedule, param_groups
from specc.train.plan import LossTerm, MetricSpec


def schedule(kind: str, epochs=10, steps_per_epoch=10, lr=0.1, **options):
    cfg = TrainConfig.model_validate({"data": {"kind": "synthetic"}, "loss": {"kind": "mse"}, "epochs": epochs,
                                      "optimizer": {"kind": "SGD", "lr": lr}, "schedule": {"kind": kind, **options}})
    opt = make_optimizer(nn.Linear(2, 2), cfg.optimizer)
    return opt, make_schedule(opt, cfg.schedule, epochs=epochs, steps_per_epoch=steps_per_epoch, base_lr=lr)


def lrs(kind: str, steps: int, **options) -> list[float]:
    opt, sched = schedule(kind, **options)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_to_min_lr():
    values = lrs("cosine", 100, warmup_epochs=1, min_lr=0.001)
    assert values[:3] == pytest.approx([0.01, 0.02, 0.03])  # linear warm-up over the first epoch's 10 steps
    assert values[9] == pytest.approx(0.1)
    assert values[10] == pytest.approx(0.1) and values[-1] == pytest.approx(0.001, abs=1e-4)
    assert values[55] == pytest.approx(0.001 + (0.1 - 0.001) * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_step_and_multistep():
    assert lrs("step", 100, step_epochs=3, gamma=0.5)[::10] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125])
    assert lrs("multistep", 100, milestones=[2, 5])[::10] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001])


def test_linear_and_onecycle():
    values = lrs("linear", 100, end_factor=0.1)
    assert values[0] == pytest.approx(0.1) and values[-1] == pytest.approx(0.1 * (0.1 + 0.9 / 100), rel=1e-3)
    cycle = lrs("onecycle", 100, max_lr=0.4, pct_start=0.3)
    assert cycle[0] == pytest.approx(0.4 / 25) and max(cycle) == pytest.approx(0.4)
    assert cycle.index(max(cycle)) == 29 and cycle[-1] < 1e-4


def test_schedule_state_is_the_step_count():
    opt, sched = schedule("cosine", warmup_epochs=2)
    for _ in range(37):
        opt.step()
        sched.step()
    opt2, sched2 = schedule("cosine", warmup_epochs=2)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for _ in range(5):
        opt.step(), sched.step(), opt2.step(), sched2.step()
    assert opt.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]


def test_no_weight_decay_for_biases_norms_and_named_params():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(1, 2, 3))
    model.add_module("bn", nn.BatchNorm2d(2))
    model.add_module("pos_embed", nn.Embedding(4, 2))
    decay, keep = param_groups(model, 0.1, ["bn", "pos_embed"])
    assert decay["weight_decay"] == 0.1 and keep["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [(2, 1, 3, 3)]
    assert len(keep["params"]) == 4  # conv.bias, bn.weight, bn.bias, pos_embed.weight


def _term(kind, class_dim=-1, weight=1.0, index=0, target_index=0, **options):
    return LossTerm(kind, f"out{index}", index, f"t{target_index}", target_index, weight, class_dim,
                    tuple(options.items()))


class _Plan:
    def __init__(self, losses=(), metrics=()):
        self.losses, self.metrics = tuple(losses), tuple(metrics)


def test_classes_last_logits_are_flattened_like_torch_expects():
    logits, target = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    loss = Objective(_Plan([_term("cross_entropy", label_smoothing=0.1, ignore_index=-100)]))((logits,), (target,))
    expected = F.cross_entropy(logits.reshape(10, 7), target.reshape(10), label_smoothing=0.1)
    assert torch.allclose(loss, expected)


def test_weighted_sum_of_losses():
    a, b = torch.randn(4, 3), torch.randn(4, 1)
    ta, tb = torch.randint(0, 3, (4,)), torch.randn(4, 1)
    objective = Objective(_Plan([_term("cross_entropy", class_dim=1), _term("huber", weight=0.5, index=1,
                                                                           target_index=1, delta=2.0)]))
    expected = F.cross_entropy(a, ta) + 0.5 * F.huber_loss(b, tb, delta=2.0)
    assert torch.allclose(objective((a, b), (ta, tb)), expected)


def test_metrics_through_torchmetrics():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    target = torch.tensor([0, 2, 2, 1])
    metrics = Metrics(_Plan(metrics=[MetricSpec("accuracy", "multiclass", 0, 0, 1, 3),
                                     MetricSpec("top2", "multiclass", 0, 0, 1, 3, top_k=2)]))
    metrics.update((logits[:2],), (target[:2],))
    metrics.update((logits[2:],), (target[2:],))
    assert metrics.compute() == pytest.approx({"val/accuracy": 0.5, "val/top2": 0.75})
    regression = Metrics(_Plan(metrics=[MetricSpec("mae", "regression", 0, 0), MetricSpec("r2", "regression", 0, 0)]))
    regression.update((torch.tensor([[1.0], [2.0], [3.0]]),), (torch.tensor([[1.0], [2.0], [4.0]]),))
    assert regression.compute() == pytest.approx({"val/mae": 1 / 3, "val/r2": 1 - 1 / (14 / 3)})



L = torch.optim.lr_scheduler


def _torch_lrs(make, steps: int, every: int = 1) -> list[float]:
    """lr before each of `steps` optimizer steps under torch's scheduler, stepped once per `every` steps."""
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched, out = make(opt), []
    for step in range(1, steps + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if step % every == 0:
            sched.step()
    return out


@pytest.mark.parametrize("epochs, steps_per_epoch, pct_start", [(10, 7, 0.3), (1, 5, 0.3), (3, 3, 0.1), (1, 3, 0.5)])
def test_onecycle_is_torchs_curve_step_by_step_even_for_short_runs(epochs, steps_per_epoch, pct_start):
    total = epochs * steps_per_epoch
    ours = lrs("onecycle", total, epochs=epochs, steps_per_epoch=steps_per_epoch, max_lr=0.4, pct_start=pct_start)
    theirs = _torch_lrs(lambda o: L.OneCycleLR(o, 0.4, total_steps=total, pct_start=pct_start, cycle_momentum=False),
                        total)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_other_schedules_are_torchs_curves_step_by_step():
    spe, total = 7, 70
    assert lrs("step", total, steps_per_epoch=spe, step_epochs=3, gamma=0.5) == pytest.approx(
        _torch_lrs(lambda o: L.StepLR(o, 3, 0.5), total, every=spe))
    assert lrs("multistep", total, steps_per_epoch=spe, milestones=[2, 5], gamma=0.3) == pytest.approx(
        _torch_lrs(lambda o: L.MultiStepLR(o, [2, 5], 0.3), total, every=spe))
    assert lrs("cosine", total, steps_per_epoch=spe, min_lr=0.01) == pytest.approx(
        _torch_lrs(lambda o: L.CosineAnnealingLR(o, total, eta_min=0.01), total))
    assert lrs("linear", total, steps_per_epoch=spe, end_factor=0.1) == pytest.approx(
        _torch_lrs(lambda o: L.LinearLR(o, 1.0, 0.1, total_iters=total), total))
    warm = 2 * spe  # warmup_epochs = 2: a linear ramp to lr over 14 steps, then the cosine over the rest
    assert lrs("cosine", total, steps_per_epoch=spe, warmup_epochs=2) == pytest.approx(_torch_lrs(
        lambda o: L.SequentialLR(o, [L.LinearLR(o, 1 / warm, 1.0, total_iters=warm - 1),
                                     L.CosineAnnealingLR(o, total - warm)], [warm]), total))


def test_a_batch_whose_labels_are_all_ignored_adds_nothing_instead_of_nan():
    logits = torch.randn(6, 3, requires_grad=True)
    target = torch.tensor([-100, -100, -100, 2, 0, -100])
    for kind, fn, options in (("cross_entropy", F.cross_entropy, {"label_smoothing": 0.1}), ("nll", F.nll_loss, {})):
        objective = Objective(_Plan([_term(kind, class_dim=1, ignore_index=-100, **options)]))
        assert torch.equal(objective((logits,), (target,)), fn(logits, target, **options))  # torch's own number
        loss = objective((logits[:3],), (target[:3],))  # torch: NaN (a mean over no labels), and the run "diverges"
        loss.backward()
        assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))
        logits.grad = None


def test_binary_metrics_apply_the_sigmoid_even_when_every_logit_lies_in_0_1():
    from sklearn.metrics import accuracy_score, f1_score

    logits = torch.tensor([[0.3], [0.8], [0.1], [0.45], [-1.5], [2.0]])
    target = torch.tensor([[1.0], [1.0], [0.0], [1.0], [0.0], [1.0]])
    metrics = Metrics(_Plan(metrics=[MetricSpec("accuracy", "binary", 0, 0), MetricSpec("f1", "binary", 0, 0)]))
    metrics.update((logits[:4],), (target[:4],))  # every logit in [0, 1]: torchmetrics would read them as probabilities
    metrics.update((logits[4:],), (target[4:],))
    predicted = (logits > 0).flatten()
    assert metrics.compute() == pytest.approx({"val/accuracy": accuracy_score(target.flatten(), predicted),
                                               "val/f1": f1_score(target.flatten(), predicted)})


def test_regression_metrics_on_one_value_per_sample():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    output, target = torch.randn(11), torch.randn(11)  # a model output float32[N] against a float32[N] target
    metrics = Metrics(_Plan(metrics=[MetricSpec(n, "regression", 0, 0) for n in ("mae", "mse", "r2")]))
    metrics.update((output[:8],), (target[:8],))
    metrics.update((output[8:],), (target[8:],))  # the last, partial batch
    assert metrics.compute() == pytest.approx({"val/mae": mean_absolute_error(target, output),
                                               "val/mse": mean_squared_error(target, output),
                                               "val/r2": r2_score(target, output)}, rel=1e-5)
