"""The seeds suite: every run is reported, a run that diverges as diverged (with the error), not dropped."""

import dataclasses

import f2d2mini as f2
from f2d2mini.bench import flowmaps, seeds

DEFAULTS = f2.train.distill_config


def tiny_config(rule):
    return dataclasses.replace(DEFAULTS(rule), steps=4, warm_steps=2, batch_size=16,
                               coverage_fraction=0.0, progress=False)


def test_one_row_per_seed_and_a_diverged_run_is_named(monkeypatch):
    monkeypatch.setattr(f2.train, "distill_config", tiny_config)
    real = f2.train.distill

    def distill(teacher, density, rule, config, seed):
        if seed == 1:
            raise FloatingPointError("loss became nan at step 3; lower lr (now 0.002)")
        return real(teacher, density, rule, config, seed=seed)

    monkeypatch.setattr(f2.train, "distill", distill)
    monkeypatch.setattr(seeds, "N_POINTS", 200)
    monkeypatch.setattr(flowmaps, "N_SAMPLES", 400)  # the sample reference
    result = seeds.seeds_suite("meanflow", ("gaussians8",), (0, 1))
    rows = result["report"]["rows"]
    assert [row["seed"] for row in rows] == [0, 1]
    assert rows[1]["diverged"].startswith("loss became nan at step 3")
    assert all(f"mae K={k}" in rows[0] for k in f2.flowmap.EVAL_STEPS) and rows[0]["seconds"] > 0
    assert "diverged" in str(result["tables"]["seeds"])
