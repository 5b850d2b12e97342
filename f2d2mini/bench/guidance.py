"""Maximum-likelihood self-guidance on images, measured (``f2d2mini bench guidance``, book chapter 6).

For the same noise: the teacher at ``euler_steps`` Euler steps and with dopri5; each flow map at K = 1, 2, 4
unguided, at K = 1 and 2 after one guided step (:func:`f2d2mini.guidance.self_guide`) at each lr of a grid, and after
2-3 guided steps at the lr of the lowest guided K = 2 Fréchet distance. Samples are quantized to the data's grey
levels and scored in the features of the package's classifier (trained on the training split) against the held-out
images: Fréchet distance (FD), precision and recall (k-NN manifolds), the classifier's mean confidence, the mean
log-likelihood a map reports for its samples. NFE counts forward and backward passes. Each metric's noise: its
spread (standard deviation) over the noise seeds, and the training images scored like samples (FD's small-sample
bias). The teacher's rows use the first ``teacher_n`` samples (1024 Euler steps on 10,000 digits take 15 minutes of
a core); the second table scores every row on those first samples, like with like.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import torch

from f2d2mini import base, checkpoint, guidance, losses, ode, reports
from f2d2mini.images import data as images_data
from f2d2mini.images import quality
from f2d2mini.reports import Table

__all__ = ["GuidanceBenchConfig", "RECIPES", "QUICK", "Scored", "score", "summary", "guidance_suite", "load_splits",
           "default_maps", "METRICS", "FORMATS"]

METRICS = ("FD", "precision", "recall", "confidence", "log p")
FORMATS = {"FD": ".3f", "precision": ".3f", "recall": ".3f", "confidence": ".3f", "log p": ".1f", "seconds": ".1f"}


@dataclass(frozen=True)
class GuidanceBenchConfig:
    """What ``bench guidance`` runs. Defaults: the digits on a CPU in about 10 minutes of one core."""

    n: int = 10_000  # samples per map row
    teacher_n: int = 2_000  # the first samples of the same noise for the teacher's rows
    lrs: tuple[float, ...] = (0.025, 0.05, 0.1, 0.2, 0.4)  # one guided step at each
    ks: tuple[int, ...] = (1, 2, 4)  # jumps of the unguided rows
    guided_ks: tuple[int, ...] = (1, 2)  # jumps after guidance
    more_steps: tuple[int, ...] = (2, 3)  # Adam steps at the best lr
    seeds: tuple[int, ...] = (0, 1, 2)  # noise seeds: the first for every row, all for the spread rows
    euler_steps: int = 1024  # the teacher's fixed-step sampler
    neighbours: int = 3  # k of precision and recall (Kynkäänniemi et al., 2019)
    classifier: quality.ClassifierConfig = field(default_factory=quality.ClassifierConfig)


RECIPES = {"digits": GuidanceBenchConfig(),
           "mnist": GuidanceBenchConfig(n=5_000, teacher_n=5_000)}  # MNIST wants a GPU: the teacher on every sample
QUICK = GuidanceBenchConfig(n=40, teacher_n=20, lrs=(0.1, 0.3), ks=(1, 2), more_steps=(2,), seeds=(0, 1),
                            euler_steps=4, classifier=quality.ClassifierConfig(steps=10, warmup=2, progress=False))


class Scored(NamedTuple):
    """A set of samples as scored: classifier ``feats`` ``[n, F]``, its ``confidence`` ``[n]`` (largest class
    probability) and the model's ``log_p`` ``[n]`` of each sample (``None`` where the model gives none)."""

    feats: torch.Tensor
    confidence: torch.Tensor
    log_p: torch.Tensor | None


def score(classifier: quality.Classifier, samples: torch.Tensor, levels: int, log_p=None) -> Scored:
    """Scores ``samples`` with ``classifier``: model samples z ``[n, C, H, W]`` quantized to ``levels`` grey levels
    first, uint8 images as they are."""
    images = samples if samples.dtype == torch.uint8 else images_data.quantize(samples, levels)
    feats = quality.features(classifier, images, levels)  # [n, F] float64 on the CPU
    head = classifier.head
    with torch.no_grad():
        logits = head(feats.to(head.weight.device, head.weight.dtype))
    confidence = logits.softmax(1).amax(1).double().cpu()
    return Scored(feats, confidence, None if log_p is None else log_p.double().cpu())


def summary(scored: Scored, real_feats: torch.Tensor, neighbours: int, m: int | None = None) -> dict:
    """The metrics (:data:`METRICS`) of the first ``m`` samples (all when ``None``) against the held-out features."""
    feats = scored.feats[:m]
    pr = quality.precision_recall(real_feats, feats, neighbours)
    return {"n": len(feats), "FD": quality.frechet_distance(feats, real_feats), "precision": pr.precision,
            "recall": pr.recall, "confidence": scored.confidence[:m].mean().item(),
            "log p": float("nan") if scored.log_p is None else scored.log_p[:m].mean().item()}


def _timed(device, fn, *args):
    """``(fn(*args), seconds)``, the time waiting for the GPU."""
    reports.synchronize(device)
    start = time.perf_counter()
    out = fn(*args)
    reports.synchronize(device)
    return out, time.perf_counter() - start


def _chunked(fn, x: torch.Tensor) -> list:
    return [fn(c) for c in x.split(images_data.eval_batch(x))]


def _guided(model, noise, lr: float, steps: int) -> torch.Tensor:
    return torch.cat(_chunked(lambda c: guidance.self_guide(model, c, lr=lr, steps=steps), noise))


def _sampled(model, noise, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(map(torch.cat, zip(*_chunked(lambda c: model.sample_and_log_prob(c, steps=k), noise))))


class _Row(NamedTuple):
    label: dict  # model, K, lr, guide steps, NFE
    scored: Scored
    seconds: float


class _Judge(NamedTuple):  # what every row is scored with
    classifier: quality.Classifier
    levels: int
    device: torch.device


def _map_rows(model, name: str, noise, plan: list[tuple[float, int]], ks, judge: _Judge) -> list[_Row]:
    """Rows of one map: for each (lr, Adam steps) of ``plan`` (lr 0: unguided) the guided noise once, then K jumps."""
    rows = []
    for lr, steps in plan:
        guided, t_guide = _timed(judge.device, _guided, model, noise, lr, steps) if lr else (noise, 0.0)
        for k in ks:
            (x, log_p), t_sample = _timed(judge.device, _sampled, model, guided, k)
            label = {"model": name, "K": k, "lr": lr, "guide steps": steps if lr else 0,
                     "NFE": k + (2 * steps if lr else 0)}
            rows.append(_Row(label, score(judge.classifier, x, judge.levels, log_p), t_guide + t_sample))
    return rows


def _map_part(model, name: str, noise: dict, config: GuidanceBenchConfig, judge: _Judge, real, bar):
    """All rows of one map on the first seed's noise, and its spread set on every seed (a list per seed)."""
    first, ks = config.seeds[0], config.guided_ks
    unguided = _map_rows(model, name, noise[first], [(0.0, 1)], config.ks, judge)
    guided = _map_rows(model, name, noise[first], [(lr, 1) for lr in config.lrs], ks, judge)
    top = [r for r in guided if r.label["K"] == max(ks)]
    best = min(top, key=lambda r: quality.frechet_distance(r.scored.feats, real)).label["lr"]
    rows = unguided + guided + _map_rows(model, name, noise[first], [(best, s) for s in config.more_steps], ks, judge)
    bar.update()
    per_seed = [[r for r in unguided + guided if r.label["K"] in ks and r.label["lr"] in (0.0, best)]]
    for seed in config.seeds[1:]:
        per_seed.append(_map_rows(model, name, noise[seed], [(0.0, 1), (best, 1)], ks, judge))
        bar.update()
    return rows, per_seed


def _teacher_rows(teacher, noise, euler_steps: int, judge: _Judge) -> list[_Row]:
    """The teacher's Euler and dopri5 samples from ``noise`` (dopri5's NFE: the mean over evaluation chunks)."""
    def euler(c):
        return ode.sample(teacher, c, euler_steps)

    def dopri5(c):
        with torch.no_grad():
            return ode.integrate(lambda t, y: (teacher(y[0], t),), (c,), 0.0, 1.0, solver="dopri5")

    x, t_euler = _timed(judge.device, lambda: torch.cat(_chunked(euler, noise)))
    solved, t_dopri = _timed(judge.device, _chunked, dopri5, noise)
    x_dopri = torch.cat([s.state[0] for s in solved])
    none = {"lr": "", "guide steps": ""}  # columns of the maps' rows
    return [_Row({"model": "teacher Euler", "K": euler_steps, **none, "NFE": euler_steps},
                 score(judge.classifier, x, judge.levels), t_euler),
            _Row({"model": "teacher dopri5", "K": "", **none, "NFE": round(statistics.mean(s.nfe for s in solved))},
                 score(judge.classifier, x_dopri, judge.levels), t_dopri)]


def _spread(per_seed: list[list[_Row]], real_feats, neighbours: int, m: int | None = None) -> list[dict]:
    """Per row of the spread set: each metric's standard deviation over the noise seeds."""
    rows = []
    for same in zip(*per_seed):
        values = [summary(r.scored, real_feats, neighbours, m) for r in same]
        label = {**same[0].label, "model": f"spread over {len(same)} seeds: {same[0].label['model']}"}
        rows.append({**label, "n": values[0]["n"], **{c: statistics.stdev(v[c] for v in values) for c in METRICS}})
    return rows


def load_splits(name: str, root, mnist, train_split: str) -> tuple[images_data.Images, torch.Tensor]:
    """The training split (the classifier's; the training images' row) and the held-out images."""
    if name == "digits":
        return images_data.load("digits", split="train"), images_data.load("digits", split="test").images
    from f2d2mini.bench.mnist import splits

    train, held_out = splits(mnist, train_split, root)
    return train, held_out.images


def default_maps(name: str, directory=checkpoint.DEFAULT_DIR) -> dict[str, Path]:
    """The maps of ``name`` that are there: ``{rule: data/checkpoints/f2d2_RULE_NAME.pt}``."""
    found = {rule: checkpoint.flow_map_path(name, rule, directory) for rule in losses.RULES}
    found = {rule: path for rule, path in found.items() if path.is_file()}
    if not found:
        raise FileNotFoundError(f"no flow map of {name} in {directory} (f2d2_RULE_{name}.pt, RULE one of "
                                f"{', '.join(losses.RULES)}); make one with f2d2mini images distill or pass --maps")
    return found


def guidance_suite(name: str = "digits", maps: dict[str, Path] | None = None, teacher_path=None,
                   config: GuidanceBenchConfig | None = None, device: torch.device | str = "cpu", *, root="data",
                   mnist=None, train_split: str = "test") -> dict:
    """The guidance tables of dataset ``name`` (``digits`` or ``mnist``; MNIST's held-out images as in
    :func:`f2d2mini.bench.mnist_cpu`: the last test images, or the whole test split with ``train_split="train"``).

    Returns ``{"tables": {name: Table}, "report": JSON-ready dict}``; the report's ``verdict`` holds, per map, the
    best lr, the FD drop of guided over unguided K = 2 against the spread, and guided K = 2 beside the teacher.
    """
    from tqdm.auto import tqdm

    config, device, start = config or RECIPES[name], torch.device(device), time.perf_counter()
    paths = maps or default_maps(name)
    models = {rule: checkpoint.load(path, device).eval() for rule, path in paths.items()}
    first = next(iter(models.values()))
    teacher = checkpoint.load(teacher_path or checkpoint.teacher_path(name), device).eval()
    base.same_sigma0(teacher, first)
    train, held_out = load_splits(name, root, mnist, train_split)
    clf = quality.train_classifier(train, replace(config.classifier, device=device.type))
    judge, real = _Judge(clf, train.levels, device), quality.features(clf, held_out, train.levels)
    k, m = config.neighbours, config.teacher_n
    noise = {seed: base.sample(config.n, first.event_shape, seed=seed, device=device) for seed in config.seeds}
    bar = tqdm(total=len(models) * len(config.seeds) + 1, desc=f"guidance {name}", unit="stage")
    rows, spread_rows = [], {}
    for rule, model in models.items():
        more, spread_rows[rule] = _map_part(model, rule, noise, config, judge, real, bar)
        rows += more
    teacher_rows = _teacher_rows(teacher, noise[config.seeds[0]][:m], config.euler_steps, judge)
    bar.update()
    bar.close()
    data_row = _Row({"model": "training images"}, score(clf, train.images[:config.n], train.levels), 0.0)
    tables, report = {}, {"name": name, "config": asdict(config), "maps": {r: str(p) for r, p in paths.items()}}
    for key, size, title in (("all", None, f"{config.n} samples per map row"),
                             ("versus_teacher", m, f"the first {m} samples of every row (the teacher's)")):
        table = [{**r.label, **summary(r.scored, real, k, size), "seconds": r.seconds}
                 for r in teacher_rows + rows + [data_row]]
        table += [s for per_seed in spread_rows.values() for s in _spread(per_seed, real, k, size)]
        tables[key] = Table(table, FORMATS, title=f"{name}: self-guidance, {title}, against {len(held_out)} "
                                                  f"held-out images (precision/recall k = {k})")
        report[key] = table
    report["verdict"] = {rule: _verdict(rule, report["all"], report["versus_teacher"], config) for rule in models}
    report["total_s"] = time.perf_counter() - start
    return {"tables": tables, "report": report}


def _verdict(rule: str, all_rows: list[dict], teacher_rows: list[dict], config: GuidanceBenchConfig) -> dict:
    """Map ``rule``'s best lr, its guided K = 2's FD drop over unguided K = 2 against the larger spread of the two,
    and guided K = 2 beside the teacher's Euler row on the teacher's samples."""
    def find(rows, name, lr):
        return next(r for r in rows if r["model"] == name and r["K"] == max(config.guided_ks) and r["lr"] == lr
                    and r["guide steps"] == (1 if lr else 0))

    best = min(config.lrs, key=lambda lr: find(all_rows, rule, lr)["FD"])
    plain, guided, spread = find(all_rows, rule, 0.0), find(all_rows, rule, best), f"spread over {len(config.seeds)}"
    noise = max(find(all_rows, f"{spread} seeds: {rule}", lr)["FD"] for lr in (0.0, best))
    euler, versus = next(r for r in teacher_rows if r["model"] == "teacher Euler"), find(teacher_rows, rule, best)
    return {"best_lr": best, "fd_unguided": plain["FD"], "fd_guided": guided["FD"], "fd_drop": plain["FD"] -
            guided["FD"], "fd_spread": noise, "drop_over_spread": (plain["FD"] - guided["FD"]) / noise,
            "target_met": plain["FD"] - guided["FD"] > 3 * noise,
            "versus_teacher": {key: {"guided": versus[key], "teacher": euler[key]} for key in METRICS[:4]}}
