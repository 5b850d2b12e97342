"""Bits per dim off the data (``f2d2mini bench ood``, book chapter 7): what a digits or MNIST flow map says about
images that are not digits, against its teacher's ODE on the same images.

The inputs: held-out test digits (the reference; for MNIST the 1,000 test images no model trained on), uniform
noise, constant images (black, mid-grey, white), inverted digits and digits shifted by two pixels. A map distilled
on the data path alone has never seen such an image at t = 1; its bits per dim there are an extrapolation, and
coverage of the cube [-1, 1]^d (:mod:`f2d2mini.coverage`) is the remedy this suite measures.
"""

from __future__ import annotations

from pathlib import Path

import torch

from f2d2mini import checkpoint, checks, consistency, flowmap
from f2d2mini.images import data, likelihood
from f2d2mini.reports import Table

__all__ = ["ood_inputs", "ood_rows", "ood_suite", "held_out", "SHIFT", "REFERENCES"]

SHIFT = 2  # pixels the shifted digits move to the right (the columns that open are black)
# The teacher's bits per dim: dopri5 with per-point error control; the exact divergence on 64 pixels, Hutchinson's
# (4 probes, unbiased) on MNIST's 784, where the exact one costs 784 passes per evaluation.
REFERENCES = {"digits": dict(solver="dopri5", divergence="exact"),
              "mnist": dict(solver="dopri5", divergence="hutchinson", probes=4, rtol=1e-4, atol=1e-4)}


def ood_inputs(test: data.Images, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` images of each kind, uint8 ``[n, C, H, W]`` with ``test.levels`` grey levels."""
    digits, top = test.images[:n], test.levels - 1
    gen = torch.Generator().manual_seed(seed)
    shifted = torch.roll(digits, shifts=SHIFT, dims=3)
    shifted[..., :SHIFT] = 0
    return {
        "test digits": digits,
        "uniform noise": torch.randint(0, test.levels, digits.shape, generator=gen, dtype=torch.uint8),
        "constant black": torch.zeros_like(digits),
        "constant grey": torch.full_like(digits, top // 2),
        "constant white": torch.full_like(digits, top),
        "inverted digits": (top - digits.int()).to(torch.uint8),
        f"digits shifted {SHIFT} px": shifted,
    }


def ood_rows(teacher, maps: dict, inputs: dict[str, torch.Tensor], levels: int, ks=flowmap.EVAL_STEPS,
             progress: bool = False, **reference) -> list[dict]:
    """Per kind of input and flow map (``maps``: name -> map of the same teacher): the teacher's ODE bits per dim
    (``reference``: options of :func:`f2d2mini.images.likelihood.ode_bpd`, e.g. one of :data:`REFERENCES`), solved
    once per kind, the map's gap at each K (map minus teacher, mean over the images; negative: the map calls the
    images likelier than its teacher does), the share of the images it warns about (:func:`f2d2mini.flowmap.
    trusted` false at some K) and, for a map that carries a consistency limit, the share outside it
    (:func:`f2d2mini.consistency.consistent`); ``progress``: a bar over the kinds (the teacher's solves take most
    of the time)."""
    from tqdm.auto import tqdm

    rows = []
    for kind, images in tqdm(inputs.items(), desc="ood", unit="kind", disable=not progress):
        ref = likelihood.ode_bpd(teacher, images, levels=levels, **reference).per_image
        for name, model in maps.items():
            row = {"input": kind, "map": name, "teacher bpd": ref.mean().item()}
            z = likelihood.dequantized(images, levels, likelihood.DEQUANT_SEED, next(model.parameters()).device)
            trusted = torch.ones(len(images), dtype=torch.bool)
            for k in ks:
                row[f"gap K={k}"] = (likelihood.bpd(model, images, k, levels=levels).per_image - ref).mean().item()
                trusted &= flowmap.trusted(model, z, k).cpu()
            row["warned"] = 1 - trusted.float().mean().item()  # share of the images the map warns about at some K
            if getattr(model, "consistency", None) is not None:  # the costlier check, asked for, not warned
                row["inconsistent"] = 1 - consistency.consistent(model, z).float().mean().item()
            rows.append(row)
    return rows


def held_out(dataset: str, mnist=None) -> data.Images:
    """Test images of ``dataset`` that no shipped model trained on: the digits' test split, or MNIST's held-out
    test images (:func:`f2d2mini.bench.mnist.splits`; ``mnist``: the folder of its files)."""
    checks.choice(dataset, ("digits", "mnist"), "dataset")
    if dataset == "digits":
        return data.load("digits", split="test")
    from f2d2mini.bench.mnist import splits

    return splits(mnist)[1]


def ood_suite(map_paths, teacher_path=None, n: int = 100, device: torch.device | str = "cpu", *, mnist=None,
              **reference) -> dict:
    """The table for saved digits or MNIST maps (of one teacher; the dataset is the first map's) on ``n`` images
    of each kind (``reference``: changes to the dataset's :data:`REFERENCES`); each map is named by its file
    name."""
    maps = {Path(path).stem: checkpoint.load(path, device) for path in map_paths}
    dataset = next(iter(maps.values())).metadata.get("dataset", "digits")
    teacher = checkpoint.load(teacher_path or checkpoint.teacher_path(dataset), device)
    test = held_out(dataset, mnist)
    reference = {**REFERENCES[dataset], **{k: v for k, v in reference.items() if v is not None}}
    rows = ood_rows(teacher, maps, ood_inputs(test, n), test.levels, progress=True, **reference)
    title = (f"{dataset}: bits per dim of {n} images of each kind (teacher: {reference['solver']}, "
             f"{reference['divergence']} divergence)")
    shares = {"warned": ".2f", "inconsistent": ".2f"}
    formats = {c: "+.3f" for c in rows[0] if c.startswith("gap")} | {"teacher bpd": ".3f"} | shares
    report = {"dataset": dataset, "reference": reference, "rows": rows, "n": n,
              "maps": {Path(path).stem: str(path) for path in map_paths}}
    return {"tables": {"ood": Table(rows, formats, title=title)}, "report": report}
