"""Per-point against whole-batch error control of the adaptive reference (dopri5, rtol = atol = 1e-5), side by side.

    python benchmarks/error_norm.py      # prints one table, writes benchmarks/results/error_norm.json

For the closed-form Gaussian-mixture velocities (gaussians8 and a thin, tilted mixture) the error is against the
exact log-density; for the shipped teachers there is no exact answer, so only NFE and time are compared. Times are
medians of three runs of each, in one process.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this working tree's f2d2mini

import f2d2mini as f2  # noqa: E402
from f2d2mini.reports import Table, median_seconds, write_report  # noqa: E402

N = 2000  # points per case
THIN = f2.toy.thin_mixture()  # a few paths bend much more than the rest


def cases():
    g8 = f2.toy.density("gaussians8")
    yield "gaussians8 (closed form)", g8.velocity, g8.sample(N, seed=7), g8.log_prob
    yield "thin mixture (closed form)", THIN.velocity, THIN.sample(N, seed=7), THIN.log_prob
    for name in ("checkerboard", "gaussians8"):
        teacher = f2.load(ROOT / "data" / "checkpoints" / f"teacher_{name}.pt")
        yield f"{name} teacher", teacher, f2.toy.density(name).sample(N, seed=7), None


def main():
    rows = []
    for name, velocity, x, exact in cases():
        for norm in f2.ode.ERROR_NORMS:
            res = f2.ode.likelihood(velocity, x, "dopri5", error_norm=norm)
            seconds = median_seconds(lambda: f2.ode.likelihood(velocity, x, "dopri5", error_norm=norm), repeats=3)  # noqa: B023
            err = (res.log_prob - exact(x)).abs() if exact is not None else None
            rows.append({"case": name, "error_norm": norm, "nfe": res.nfe, "seconds": seconds,
                         "max_error": err.max().item() if err is not None else float("nan"),
                         "mean_error": err.mean().item() if err is not None else float("nan")})
    table = Table(rows, {"seconds": ".2f", "max_error": ".1e", "mean_error": ".1e"},
                  title=f"dopri5 (rtol = atol = 1e-5) on {N} points: per-point ('sample') vs whole-batch error control")
    print(table)
    print(f"\nwrote {write_report(ROOT / 'benchmarks' / 'results' / 'error_norm.json', 'cpu', rows=rows)}")


if __name__ == "__main__":
    main()
