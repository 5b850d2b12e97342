"""Hypothesis over every public entry point that takes points or images: whatever shapes, dtypes, values, devices
and arguments, a call returns a correct result of the documented shape and dtype (:mod:`f2d2mini.checks`) or raises
a ValueError/TypeError naming a bad argument; nothing else escapes, and no inf or nan comes from finite input. An
example with no bad argument must succeed (points out at 1e30 may be refused by name). Derandomized;
``F2D2MINI_HYPOTHESIS_EXAMPLES=N`` draws N fresh random examples per test instead."""

import math
import os
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import f2d2mini as f2
from f2d2mini import flowmap, guidance, metrics, ode
from f2d2mini.images import likelihood, unet

torch.set_num_threads(1)
torch.manual_seed(0)
pytestmark = pytest.mark.filterwarnings("ignore::f2d2mini.coverage.OutsideRegionWarning")

EXPLORE = int(os.environ.get("F2D2MINI_HYPOTHESIS_EXAMPLES", "0"))
EXAMPLES = 60  # examples per test (each test is one entry point, or a few that share their arguments)
SETTINGS = settings(max_examples=EXPLORE or EXAMPLES, deadline=None, database=None, derandomize=not EXPLORE,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
GOOD_SHARE = 4  # each argument is good 4 times as often as bad: about a third of the examples are valid throughout
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
OTHERS = (torch.int64, torch.int32, torch.uint8, torch.bool)
SPECIAL = (math.nan, math.inf, -math.inf, 1e30, -1e30, 5e-324, 1e-45, 1e-310)  # the last three are denormals
FAR = 1e15  # points this far out may be refused (their squared norm or their log-density overflows)
META_ONE_IN = 20  # one tensor in about this many goes to the meta device
LEVELS = 17  # grey levels of the test images (the digits')
TINY_UNET = {"channels": 1, "size": 4, "widths": (8,), "embed_dim": 8, "time_frequencies": 2, "groups": 4}
MAP = flowmap.JointFlowMap(flowmap.FlowMapConfig(width=8, depth=1, time_frequencies=2))
IMAGE_MAP = unet.UNetFlowMap(unet.UNetFlowMapConfig(**TINY_UNET, div_hidden=8))
TEACHER = f2.nets.VelocityMLP(f2.nets.MLPConfig(width=8, depth=1, time_frequencies=2))
IMAGE_TEACHER = unet.UNetVelocity(unet.UNetConfig(**TINY_UNET))
GMM, CHECKERBOARD = f2.toy.density("gaussians8"), f2.toy.density("checkerboard")
MAPS = pytest.mark.parametrize("model", [MAP, IMAGE_MAP], ids=["JointFlowMap", "UNetFlowMap"])


def mostly(good, *bad):
    """``good`` (a strategy) GOOD_SHARE times as often as one of the ``bad`` values (and the one shrunk to)."""
    return st.integers(0, GOOD_SHARE).flatmap(lambda i: good if i < GOOD_SHARE else st.sampled_from(bad))


STEPS = mostly(st.integers(1, 3), 0, -1, 1.5, 2.0, 10**9, "2", None, True)
SEEDS = mostly(st.sampled_from((0, 7, None)), -1, 2**64, "a", 1.5)
ROWS = st.sampled_from((2, 1, 3, 0))  # batch sizes, the empty one included (Hypothesis favours the first)
REVERSALS = mostly(st.sampled_from(flowmap.REVERSALS), "second_order", "", None, 3)
SOLVERS = mostly(st.sampled_from(("euler", "rk4", "dopri5")), "bogus", None)
DIVERGENCES = mostly(st.sampled_from(("exact", "hutchinson")), "trace")
LRS = mostly(st.floats(1e-4, 1.0), 0.0, -0.1, math.nan, math.inf, -math.inf, 1e39, "0.1", None, True)
LEVEL_CHOICES = mostly(st.sampled_from((LEVELS, 256)), 0, -1, 16.5)
BATCH_SIZES = mostly(st.sampled_from((None, 1, 2)), 0, -1, 1.5)


def failing(**good: bool) -> set[str]:
    """The names of the arguments that are not good."""
    return {name for name, ok in good.items() if not ok}


def good_steps(steps) -> bool:
    return type(steps) is int and 1 <= steps <= f2.checks.MAX_STEPS


def good_seed(seed) -> bool:
    return seed is None or type(seed) is int and f2.base.SEED_RANGE[0] <= seed <= f2.base.SEED_RANGE[1]


def values(draw, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    """A tensor of ``shape`` with values in [low, high] but at most one special one, of any dtype."""
    entries = draw(st.lists(st.floats(low, high), min_size=math.prod(shape), max_size=math.prod(shape)))
    special = draw(mostly(st.none(), *SPECIAL))
    if special is not None and entries:
        entries[draw(st.integers(0, len(entries) - 1))] = special
    return torch.tensor(entries, dtype=torch.float64).reshape(shape).to(draw(mostly(st.sampled_from(FLOATS), *OTHERS)))


@st.composite
def tensors(draw, event: tuple[int, ...]) -> torch.Tensor:
    """Points ``[rows, *event]`` (or of a wrong rank or feature count) on the CPU or, now and then, the meta device."""
    rows = draw(ROWS)
    shape = draw(mostly(st.just((rows, *event)), (rows, *event[:-1], event[-1] + 1), (rows,), (rows, *event, 1), ()))
    x = values(draw, shape, -3, 3)
    return x.to("meta") if draw(st.integers(0, META_ONE_IN)) == META_ONE_IN else x


def good_points(x, event: tuple[int, ...], min_rows: int = 0) -> bool:
    return (x.is_floating_point() and not x.is_meta and tuple(x.shape[1:]) == event and x.ndim == 1 + len(event)
            and len(x) >= min_rows and bool(torch.isfinite(x).all()))


def far(x, *names: str) -> set[str]:  # the names that may be refused: those of points beyond FAR
    return set(names) if x.is_floating_point() and not x.is_meta and x.numel() and x.abs().max() > FAR else set()


def outcome(call, bad: set, may_fail: set = frozenset()):
    """The result of ``call()``; with ``bad`` arguments it must raise a ValueError/TypeError naming one of them, and
    without, it must return (or raise one naming an argument of ``may_fail``)."""
    try:
        result = call()
    except (ValueError, TypeError) as err:
        names = set(bad) | set(may_fail)
        assert any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", str(err)) for n in names), f"{err!r}: none of {names}"
        return None
    assert not bad, f"bad {sorted(bad)} accepted, returned {result!r}"[:500]
    return result


def assert_tensor(out: torch.Tensor, shape: tuple, dtype: torch.dtype) -> None:
    assert (tuple(out.shape), out.dtype) == (tuple(shape), dtype) and torch.isfinite(out).all(), (out, shape, dtype)


@MAPS
@SETTINGS
@given(data=st.data(), steps=STEPS, reversal=REVERSALS, method=st.booleans())
def test_flow_map_log_prob(model, data, steps, reversal, method):
    x = data.draw(tensors(model.event_shape))
    bad = failing(x=good_points(x, model.event_shape), steps=good_steps(steps), reversal=reversal in flowmap.REVERSALS)
    call = (lambda: model.log_prob(x, steps, reversal)) if method else (
        lambda: flowmap.log_prob(model, x, steps, reversal=reversal))
    out = outcome(call, bad, far(x, "x"))
    if out is not None:
        assert_tensor(out, (len(x),), torch.float32)  # the model's dtype, whatever x's
        assert torch.equal(out, model.log_prob(x.float(), steps, reversal))


@MAPS
@SETTINGS
@given(data=st.data(), steps=STEPS, seed=SEEDS, with_log_prob=st.booleans(), method=st.booleans())
def test_flow_map_sampling(model, data, steps, seed, with_log_prob, method):
    counts = mostly(st.sampled_from((0, 1, 3)), -1, 2.5, "3", None, True)
    n_or_x0 = data.draw(st.one_of(tensors(model.event_shape), counts) if method else tensors(model.event_shape))
    is_tensor = isinstance(n_or_x0, torch.Tensor)
    good = good_points(n_or_x0, model.event_shape) if is_tensor else type(n_or_x0) is int and n_or_x0 >= 0
    bad = failing(**{"x0" if is_tensor else "n_or_x0": good}, steps=good_steps(steps), seed=is_tensor or
                  good_seed(seed))
    fn = getattr(model if method else flowmap, "sample_and_log_prob" if with_log_prob else "sample")
    call = (lambda: fn(n_or_x0, steps, seed=seed)) if method else (lambda: fn(model, n_or_x0, steps))
    out = outcome(call, bad, far(n_or_x0, "x0") if is_tensor else set())
    if out is not None:
        b = len(n_or_x0) if is_tensor else n_or_x0
        assert_tensor(out.x if with_log_prob else out, (b, *model.event_shape), torch.float32)
        if with_log_prob:
            assert_tensor(out.log_prob, (b,), torch.float32)


@pytest.mark.parametrize("velocity", [TEACHER, GMM.velocity], ids=["VelocityMLP", "gmm.velocity"])
@SETTINGS
@given(x=tensors((2,)), solver=SOLVERS, steps=STEPS, adaptive_steps=mostly(st.none(), 2), divergence=DIVERGENCES,
       entry=st.sampled_from(("sample", "likelihood", "log_prob")), probes=mostly(st.just(1), 0, 1.5, 10**9),
       max_nfe=mostly(st.sampled_from((ode.MAX_NFE, 12)), 0), rtol=mostly(st.just(1e-3), 0.0, -1.0, math.nan))
def test_ode(velocity, x, solver, steps, adaptive_steps, entry, divergence, probes, max_nfe, rtol):
    adaptive = solver in ode.ADAPTIVE
    steps = adaptive_steps if adaptive else steps  # an adaptive solver takes steps=None
    bad = failing(**{"x0" if entry == "sample" else "x": good_points(x, (2,))}, solver=solver in ode.SOLVERS,
                  steps=steps is None if adaptive else good_steps(steps) or solver not in ode.SOLVERS,
                  rtol=not adaptive or rtol > 0)
    if entry == "sample":
        call = lambda: ode.sample(velocity, x, steps, solver, rtol=rtol)  # noqa: E731
    else:
        call = lambda: getattr(ode, entry)(velocity, x, solver, steps, divergence=divergence, probes=probes,  # noqa
                                           max_nfe=max_nfe, rtol=rtol)
        bad |= failing(divergence=divergence in ode.DIVERGENCES, max_nfe=not adaptive or max_nfe > 0,
                       probes=divergence != "hutchinson" or probes == 1)
    out = outcome(call, bad, far(x, "x", "x0") | ({"max_nfe"} if adaptive else set()))  # a cap of 12 may be hit
    if out is not None:
        dtype = torch.float32 if velocity is TEACHER else torch.promote_types(x.dtype, torch.float32)
        assert_tensor(out if entry != "likelihood" else out.log_prob, x.shape[:1 + (entry == "sample")], dtype)
        if entry == "likelihood":
            assert_tensor(out.x0, x.shape, dtype)


@st.composite
def images(draw) -> torch.Tensor:
    """Images ``[N, 1, 4, 4]`` (or another shape or dtype) with grey levels up to 16, 17 or 255."""
    dtype = draw(mostly(st.just(torch.uint8), torch.float32, torch.int64, torch.bool))
    rows, top = draw(ROWS), draw(mostly(st.just(LEVELS - 1), LEVELS, 255))
    shape = draw(mostly(st.just((rows, 1, 4, 4)), (rows, 2, 4, 4), (rows, 1, 8, 8), (rows, 16), (rows,)))
    return torch.randint(0, top + 1, shape, generator=torch.Generator().manual_seed(draw(st.integers(0, 99)))).to(dtype)


@SETTINGS
@given(k=images(), flow_map=st.booleans(), steps=STEPS, levels=LEVEL_CHOICES, batch_size=BATCH_SIZES,
       reversal=REVERSALS, solver=mostly(st.sampled_from(("euler", "heun")), "bogus"), divergence=DIVERGENCES)
def test_bits_per_dim(k, flow_map, steps, levels, batch_size, reversal, solver, divergence):
    """``images.bpd`` with the flow map, ``images.ode_bpd`` with the teacher."""
    good_levels, kw = type(levels) is int and levels >= 1, {"levels": levels, "batch_size": batch_size}
    bad = failing(images=k.dtype == torch.uint8 and tuple(k.shape[1:]) == (1, 4, 4) and len(k) > 0 and (
        not good_levels or k.max().item() < levels), levels=good_levels,
        batch_size=batch_size is None or type(batch_size) is int and batch_size >= 1)
    if flow_map:
        bad |= failing(steps=good_steps(steps), reversal=reversal in flowmap.REVERSALS)
        call = lambda: likelihood.bpd(IMAGE_MAP, k, steps, reversal=reversal, **kw)  # noqa: E731
    else:
        bad |= failing(solver=solver in ode.SOLVERS, divergence=divergence in ode.DIVERGENCES,
                       steps=good_steps(steps) or solver not in ode.SOLVERS)
        call = lambda: likelihood.ode_bpd(IMAGE_TEACHER, k, solver=solver, steps=steps, divergence=divergence, **kw)  # noqa
    out = outcome(call, bad)
    if out is not None:
        assert_tensor(out.per_image, (len(k),), torch.float64)
        assert math.isfinite(out.bpd) and (out.nfe == steps or not flow_map)


@MAPS
@SETTINGS
@given(data=st.data(), lr=LRS, steps=STEPS)
def test_self_guide(model, data, lr, steps):
    x0 = data.draw(tensors(model.event_shape))
    good_lr = type(lr) is float and math.isfinite(lr) and lr > 0
    bad = failing(x0=good_points(x0, model.event_shape), lr=good_lr, steps=good_steps(steps))
    may = far(x0, "x0") | failing(lr=not good_lr or lr <= FAR)  # lr = 1e39 is beyond float32
    out = outcome(lambda: guidance.self_guide(model, x0, lr, steps), bad, may)
    if out is not None:
        assert_tensor(out, x0.shape, torch.float32)


@SETTINGS
@given(data=st.data(), projections=mostly(st.sampled_from((metrics.PROJECTIONS, 1)), 0, -3, 2.5, 10**9), seed=SEEDS)
def test_sliced_wasserstein(data, projections, seed):
    a = data.draw(tensors((2,)))
    b = data.draw(st.integers(0, GOOD_SHARE).flatmap(lambda i: st.just(a.clone()) if i else tensors((2,))))
    d = tuple(a.shape[1:]) if a.ndim == 2 else (2,)  # any number of features, the same in both
    good_a, good_b = good_points(a, d, 1), good_points(b, d, 1)
    bad = failing(a=good_a and (not good_b or len(a) == len(b)), b=good_b, seed=good_seed(seed),
                  projections=type(projections) is int and 1 <= projections <= metrics.MAX_PROJECTIONS)
    out = outcome(lambda: metrics.sliced_wasserstein(a, b, projections, seed), bad)
    assert out is None or (math.isfinite(out) and out >= 0)


@pytest.mark.parametrize("density", [GMM, CHECKERBOARD], ids=["gaussians8", "checkerboard"])
@SETTINGS
@given(x=tensors((2,)), draws=mostly(st.sampled_from((None, 5)), 1, 0, -1, 2.5), seed=SEEDS, gap=st.booleans())
def test_density_metrics(density, x, draws, seed, gap):
    if gap:
        bad = failing(x=good_points(x, (2,), 2), draws=draws is None or type(draws) is int and draws >= 2,
                      seed=good_seed(seed))
        out = outcome(lambda: metrics.log_density_gap(density, x, draws=draws, seed=seed), bad, {"x"})  # log p = -inf
        assert out is None or (math.isfinite(out.gap) and math.isfinite(out.std_error))
    else:
        out = outcome(lambda: metrics.support_fraction(density, x), failing(x=good_points(x, (2,), 1)))
        assert out is None or 0 <= out <= 1


def good_log_densities(x, n: int) -> bool:
    return x.is_floating_point() and x.shape == (n,) and n > 0 and not (x.isnan() | (x == math.inf)).any()


@SETTINGS
@given(data=st.data(), n=st.sampled_from((4, 1, 0)), cell=mostly(st.sampled_from((0.01, 1.0)), 0, -1.0, math.nan, "a"))
def test_grid_score(data, n, cell):
    log_prob, reference = (values(data.draw, data.draw(mostly(st.just((n,)), (n, 1))), -30, 5) for _ in range(2))
    bad = failing(log_prob=good_log_densities(log_prob, n), cell_area=type(cell) is float and math.isfinite(cell) and
                  cell > 0, reference=good_log_densities(reference, n) and reference.max() >= metrics.MASS_LOG_PROB)
    out = outcome(lambda: metrics.grid_score(log_prob, reference, cell), bad)
    if out is not None:  # -inf where the reference has mass makes mae inf, a peak past float64 the integral; no nan
        assert out.integral >= 0 and not any(map(math.isnan, out)) and 0 <= out.off_by_1 <= 1
