"""Where an image map's bits-per-dim gap to its teacher lives (``f2d2mini bench gap``, book chapter 7).

For the held-out test images (MNIST: the 1,000 that ``bench mnist`` scores; digits: the test split), the map's gap
at K = 1, 2, 4, 8 split into its end term and its divergence term (:mod:`f2d2mini.gap`), how it spreads over the
images, how it differs between the images the teacher finds hardest (its highest tenth of bits per dim) and the
rest, and its mean over blocks of consecutive images. The teacher is solved as ``bench mnist`` solves it (dopri5,
one Hutchinson probe, rtol = atol = 1e-3) on MNIST, with the exact divergence on the digits' 64 pixels.
"""

from __future__ import annotations

import math

import torch

from f2d2mini import checkpoint, checks, flowmap, gap
from f2d2mini.bench import ood
from f2d2mini.bench.mnist import MnistCPUConfig
from f2d2mini.images import data, likelihood
from f2d2mini.reports import Table

__all__ = ["REFERENCES", "HARDEST", "BLOCK", "split_images", "gap_rows", "block_rows", "gap_suite"]

REFERENCES = {"digits": ood.REFERENCES["digits"],
              "mnist": dict(solver="dopri5", divergence="hutchinson", probes=1, rtol=MnistCPUConfig.tol,
                            atol=MnistCPUConfig.tol)}
HARDEST = 0.9  # the images whose teacher bits per dim lie above this quantile are "the hardest tenth"
BLOCK = 200  # consecutive held-out images per row of the block table
QUANTILES = (0.05, 0.5, 0.95)  # of the per-image gap


def split_images(teacher, model, images: torch.Tensor, levels: int, ks=flowmap.EVAL_STEPS, progress: bool = False,
                 **reference) -> tuple[torch.Tensor, dict[int, dict[str, torch.Tensor]]]:
    """The teacher's bits per dim ``[N]`` of integer ``images`` and, per K, the map's gap and its end and
    divergence terms in bits per dim ``[N]`` (map minus teacher; negative: the map finds the image likelier) and
    the landing ratio |x_K| / |x(0)|, on the same dequantized images (``reference``: the teacher's solve, options
    of :func:`f2d2mini.ode.likelihood`), in evaluation chunks (:func:`f2d2mini.images.data.eval_batch`;
    ``progress``: a bar over the images, whose teacher solves take minutes on MNIST). Raises as
    :func:`f2d2mini.images.likelihood.bpd` does for images that are not uint8 grey levels of the map's shape."""
    from tqdm.auto import tqdm

    likelihood.check_images(images, levels, model)
    device = likelihood.device_of(model)
    z = likelihood.dequantized(images, levels, likelihood.DEQUANT_SEED, device)
    d = z[0].numel()
    teacher_lp, parts = [], {k: [] for k in ks}
    with likelihood.true_float32(), tqdm(total=len(z), desc="gap", unit="img", disable=not progress) as bar:
        for chunk in z.split(data.eval_batch(z)):
            res = gap.split(teacher, model, chunk, ks, **reference)
            teacher_lp.append(res.reference.log_prob.double().cpu())
            for k in ks:
                parts[k].append(res.terms[k])
            bar.update(len(chunk))
    per_k = {}
    for k in ks:
        terms = gap.GapTerms(*(torch.cat(col).double().cpu() for col in zip(*parts[k])))
        per_k[k] = {"gap": _bits(terms.total, d), "end": _bits(terms.end, d),
                    "divergence": _bits(terms.divergence, d), "landing": terms.landing}
    return likelihood.bits_per_dim(torch.cat(teacher_lp), d, levels), per_k


def _bits(nats: torch.Tensor, d: int) -> torch.Tensor:
    """A log-likelihood difference in nats as a bits-per-dim difference (its sign flips)."""
    return -nats / (d * math.log(2))


def gap_rows(teacher_bpd: torch.Tensor, per_k: dict) -> list[dict]:
    """A row per K: mean gap, end and divergence terms, landing ratio, quantiles of the per-image gap, and the gap
    on the teacher's hardest tenth of the images against the rest."""
    hard = teacher_bpd > teacher_bpd.quantile(HARDEST)
    rows = []
    for k, cols in per_k.items():
        g = cols["gap"]
        row = {"K": k, "gap": g.mean().item(), "end": cols["end"].mean().item(),
               "divergence": cols["divergence"].mean().item(), "|x_K|/|x(0)|": cols["landing"].mean().item()}
        quantiles = g.quantile(torch.tensor(QUANTILES, dtype=g.dtype)).tolist()
        row |= {f"gap q{round(100 * q)}": v for q, v in zip(QUANTILES, quantiles)}
        rows.append(row | {"hardest tenth": g[hard].mean().item(), "the rest": g[~hard].mean().item()})
    return rows


def block_rows(teacher_bpd: torch.Tensor, per_k: dict, block: int = BLOCK) -> list[dict]:
    """A row per block of ``block`` consecutive images: the teacher's mean bits per dim and the mean gap at each K."""
    n = len(teacher_bpd)
    return [{"images": f"{i}-{min(i + block, n) - 1}", "teacher bpd": teacher_bpd[i:i + block].mean().item(),
             **{f"gap K={k}": cols["gap"][i:i + block].mean().item() for k, cols in per_k.items()}}
            for i in range(0, n, block)]


def gap_suite(dataset: str, teacher_path=None, map_path=None, n: int | None = None,
              device: torch.device | str = "cpu", *, mnist=None) -> dict:
    """The tables for a dataset's shipped teacher and Shortcut map (or the given checkpoints) on its first ``n``
    held-out images (default: all of them; MNIST's 1,000)."""
    checks.choice(dataset, REFERENCES, "dataset")
    teacher_path = teacher_path or checkpoint.teacher_path(dataset)
    map_path = map_path or checkpoint.flow_map_path(dataset, "shortcut")
    teacher, model = checkpoint.load(teacher_path, device), checkpoint.load(map_path, device)
    test = ood.held_out(dataset, mnist)
    images = test.images if n is None else test.images[:checks.positive_int(n, "n")]
    teacher_bpd, per_k = split_images(teacher, model, images, test.levels, progress=True, **REFERENCES[dataset])
    rows, blocks = gap_rows(teacher_bpd, per_k), block_rows(teacher_bpd, per_k)
    title = (f"{dataset}: the map's bits-per-dim gap to its teacher on {len(images)} held-out images, split "
             f"(map minus teacher; teacher {teacher_bpd.mean().item():.4f} bpd by {REFERENCES[dataset]['solver']}, "
             f"{REFERENCES[dataset]['divergence']} divergence)")
    formats = {c: "+.4f" for c in rows[0] if c not in ("K", "|x_K|/|x(0)|")} | {"|x_K|/|x(0)|": ".4f"}
    block_formats = {c: "+.3f" for c in blocks[0] if c.startswith("gap")} | {"teacher bpd": ".3f"}
    report = {"dataset": dataset, "n": len(images), "reference": REFERENCES[dataset], "teacher": str(teacher_path),
              "map": str(map_path), "teacher bpd": teacher_bpd.mean().item(), "rows": rows, "blocks": blocks}
    return {"tables": {"gap": Table(rows, formats, title=title),
                       "blocks": Table(blocks, block_formats, title=f"by blocks of {BLOCK} consecutive images:")},
            "report": report}
