"""What a Python user expects of gmm.GaussianMixture beyond scikit-learn's checks: arrays used without a
copy, the GIL released during fits, Ctrl-C stopping a long fit, pickling and cloning, Pipeline and
GridSearchCV, conversion to and from scikit-learn, verbose progress, ConvergenceWarning, warm start, the
device option, and errors as ValueError / RuntimeError carrying the library's message."""
import io
import os
import pickle
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gmm


def blobs(n, d=2, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=6.0, size=(k, d))
    return centers[rng.integers(k, size=n)] + rng.normal(size=(n, d))


# ------------------------------------------------------------------------------------------ no copies


def peak_bytes(fn):
    """Peak of the memory numpy (and Python) allocated while fn ran (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_float64_used_without_copy():
    x = blobs(400_000, d=4)  # 12.8 MB
    est = gmm.GaussianMixture(3, random_state=0, max_iter=5, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        peak = peak_bytes(lambda: est.fit(x))
    assert peak < x.nbytes / 8, peak
    with pytest.warns(ConvergenceWarning):
        est.fit(x[:100])
    assert peak_bytes(lambda: est.score(x)) < x.nbytes / 8 + 8 * len(x) * 1.1  # log p(x): n doubles


def test_float32_used_without_copy():
    x = np.asarray(blobs(400_000, d=4), dtype=np.float32)  # 6.4 MB, C order: read in place (the _f32 calls)
    est = gmm.GaussianMixture(3, random_state=0, max_iter=5, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        peak = peak_bytes(lambda: est.fit(x))
    assert peak < x.nbytes / 8, peak
    with pytest.warns(ConvergenceWarning):
        peak = peak_bytes(lambda: est.fit_predict(x))
    assert peak < x.nbytes / 8 + 12 * len(x) * 1.1, peak  # the labels: n ints, then n intp
    assert peak_bytes(lambda: est.score(x)) < x.nbytes / 8 + 8 * len(x) * 1.1  # log p(x): n doubles


def test_float32_fortran_order_converted_once():
    x = np.asarray(blobs(400_000, d=4), dtype=np.float32, order="F")  # 6.4 MB: one C-order float32 copy
    est = gmm.GaussianMixture(3, random_state=0, max_iter=5, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        peak = peak_bytes(lambda: est.fit(x))
    assert x.nbytes <= peak < 1.25 * x.nbytes, peak


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_float32_equals_its_float64_copy(covariance_type):
    """float32 data read in place give, bit for bit, what the same values widened to float64 give."""
    x32 = np.asarray(blobs(5_000, d=3, k=3, seed=4), dtype=np.float32)
    x64 = x32.astype(np.float64)
    fits = []
    for x in (x32, x64):
        est = gmm.GaussianMixture(3, covariance_type=covariance_type, random_state=2, n_init=2, max_iter=30)
        labels = est.fit_predict(x)
        fits.append((est, labels, est.score_samples(x), est.predict_proba(x), est.score(x)))
    (a, la, sa, pa, ma), (b, lb, sb, pb, mb) = fits
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_", "n_iter_"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(la, lb) and np.array_equal(sa, sb) and np.array_equal(pa, pb) and ma == mb


def main_thread_gaps(work):
    """Runs work() in another thread while this one ticks every millisecond; returns the work's duration
    and the longest gap between ticks (as long as the work when the GIL is held throughout)."""
    ticks, done = [], threading.Event()
    t = threading.Thread(target=lambda: (work(), done.set()))
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    t.join()
    return time.perf_counter() - start, np.diff([start] + ticks).max()


@pytest.mark.parametrize("method", ["fit", "score_samples", "predict"])
def test_the_gil_is_released(method):
    x = blobs(300_000, d=8, k=8)
    est = gmm.GaussianMixture(8, random_state=0, max_iter=15, tol=0.0)
    if method == "fit":
        work = lambda: est.fit(x)  # noqa: E731
    else:
        with pytest.warns(ConvergenceWarning):
            est.fit(x)
        big = np.concatenate([x] * 4)
        while True:  # large enough that one call outlasts the 0.1 s the check below needs, on any machine
            t0 = time.perf_counter()
            getattr(est, method)(big)
            if time.perf_counter() - t0 >= 0.3 or len(big) >= 20_000_000:
                break
            big = np.concatenate([big] * 2)
        work = lambda: getattr(est, method)(big)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        elapsed, gap = main_thread_gaps(work)
    # with the GIL held through the library call the longest gap would be about the whole call; what holds
    # it here is numpy's validation and conversions around the call
    assert elapsed > 0.1 and gap < 0.5 * elapsed, (elapsed, gap)


# ------------------------------------------------------------------------------------------- Ctrl-C

INTERRUPT_CHILD = textwrap.dedent(
    """
    import os, sys, time, warnings
    import numpy as np
    import gmm
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200_000, 8))
    est = gmm.GaussianMixture(16, random_state=0, max_iter=100000, tol=0.0, init_params="random")

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    for attempt in range(4):
        if attempt == 1:
            base = rss()
        print("fitting", flush=True)
        t0 = time.perf_counter()
        try:
            est.fit(x)
            print("not interrupted", flush=True)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted %.3f" % (time.perf_counter() - t0), flush=True)
    growth = rss() - base
    small = gmm.GaussianMixture(2, random_state=0).fit(x[:2000, :2])
    print("after: converged %s growth %d" % (small.converged_, growth), flush=True)
    """
)


def test_ctrl_c_stops_a_long_fit():
    child = subprocess.Popen([sys.executable, "-c", INTERRUPT_CHILD], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, OMP_NUM_THREADS="2"))
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()

    def next_line():
        try:
            return lines.get(timeout=20).strip()
        except queue.Empty:
            return "(nothing within 20 s)"

    try:
        for attempt in range(4):
            assert next_line() == "fitting"
            time.sleep(1.0)  # well into EM (an iteration here takes some 0.1 s)
            sent = time.perf_counter()
            child.send_signal(signal.SIGINT)
            line = next_line()
            latency = time.perf_counter() - sent
            assert line.startswith("interrupted"), line
            assert latency < 3.0, latency
        # the process stays usable, and three interrupted fits left no memory behind
        words = next_line().split()
        assert words[:3] == ["after:", "converged", "True"], words
        assert int(words[4]) < 4 << 20, words
        assert child.wait(timeout=30) == 0
    finally:
        child.kill()


# ------------------------------------------------------------------------------------ sklearn's ways


def test_pickle_clone_and_copies_predict_the_same():
    x = blobs(3000)
    est = gmm.GaussianMixture(3, covariance_type="tied", random_state=1).fit(x)
    back = pickle.loads(pickle.dumps(est))
    assert np.array_equal(back.predict(x), est.predict(x))
    np.testing.assert_array_equal(back.score_samples(x), est.score_samples(x))
    assert back.n_iter_ == est.n_iter_ and back.get_params() == est.get_params()
    fresh = clone(est)
    assert not hasattr(fresh, "means_") and fresh.get_params() == est.get_params()
    assert np.array_equal(fresh.fit(x).means_, est.means_)


def test_pipeline_and_grid_search():
    x = blobs(1500, d=3, k=4, seed=2)
    pipe = make_pipeline(StandardScaler(), gmm.GaussianMixture(random_state=0))
    search = GridSearchCV(pipe, {"gaussianmixture__n_components": [1, 2, 4],
                                 "gaussianmixture__covariance_type": ["full", "diag"]}, cv=3)
    search.fit(x)
    assert search.best_params_["gaussianmixture__n_components"] == 4
    assert np.isfinite(search.score(x))


def test_to_and_from_sklearn():
    x = blobs(2000, d=3)
    est = gmm.GaussianMixture(3, covariance_type="diag", random_state=0).fit(x)
    sk = est.to_sklearn()
    assert isinstance(sk, SkGaussianMixture) and sk.covariance_type == "diag" and sk.n_components == 3
    np.testing.assert_allclose(sk.score_samples(x), est.score_samples(x), rtol=1e-12)
    sk2 = SkGaussianMixture(3, covariance_type="spherical", random_state=0).fit(x)
    ours = gmm.GaussianMixture.from_sklearn(sk2)
    assert ours.covariance_type == "spherical" and ours.random_state == 0
    np.testing.assert_allclose(ours.score_samples(x), sk2.score_samples(x), rtol=1e-12)
    assert np.array_equal(ours.predict(x), sk2.predict(x))
    unfitted = gmm.GaussianMixture.from_sklearn(SkGaussianMixture(5, tol=1e-4))
    assert unfitted.n_components == 5 and unfitted.tol == 1e-4 and not hasattr(unfitted, "means_")


def test_verbose_prints_sklearns_progress():
    x = blobs(2000)
    out = io.StringIO()
    with redirect_stdout(out):
        est = gmm.GaussianMixture(3, random_state=0, n_init=2, verbose=2, verbose_interval=1).fit(x)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Initialization 0" and "Initialization 1" in lines
    assert lines[1].startswith("  Iteration 1\t time lapse ") and "\t ll change " in lines[1]
    ends = [line for line in lines if line.startswith("Initialization converged. time lapse ")]
    assert len(ends) == 2 and any(e.endswith("lower bound %.5f." % est.lower_bound_) for e in ends), ends
    assert sum(line.startswith("  Iteration") for line in lines) >= 2 * 2
    out = io.StringIO()
    with redirect_stdout(out):
        gmm.GaussianMixture(3, random_state=0, verbose=1, verbose_interval=2).fit(x)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Initialization 0" and lines[1] == "  Iteration 2" and lines[-1] == "Initialization converged."


def test_convergence_warning_at_max_iter():
    x = blobs(2000)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        est = gmm.GaussianMixture(3, random_state=0, max_iter=2, tol=0.0).fit(x)
    assert not est.converged_ and est.n_iter_ == 2


def test_warm_start_continues_from_the_last_fit():
    x = blobs(3000, k=4, seed=3)
    cold = gmm.GaussianMixture(4, random_state=0, max_iter=8, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        cold.fit(x)
    warm = gmm.GaussianMixture(4, random_state=0, max_iter=4, tol=0.0, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        warm.fit(x)
        first = warm.means_.copy()
        warm.fit(x)  # 4 more iterations from where it stopped: about where 8 in one go get
    assert not np.array_equal(first, warm.means_)
    np.testing.assert_allclose(warm.means_, cold.means_, rtol=1e-6, atol=1e-6)


def test_device_option():
    x = blobs(2000)
    with pytest.raises(ValueError, match="'device' parameter"):
        gmm.GaussianMixture(3, device="tpu").fit(x)
    with pytest.raises(ValueError, match="'dtype' parameter"):
        gmm.GaussianMixture(3, dtype="float16").fit(x)
    cpu = gmm.GaussianMixture(3, random_state=0).fit(x)
    assert cpu.device_.startswith("CPU")
    auto = gmm.GaussianMixture(3, random_state=0, device="auto").fit(x)
    if auto.device_.startswith("CUDA"):  # a usable GPU: its float32 answers agree with the CPU's
        np.testing.assert_allclose(auto.means_, cpu.means_, rtol=1e-4, atol=1e-4)
        cuda = gmm.GaussianMixture(3, random_state=0, device="cuda", dtype="float64").fit(x)
        np.testing.assert_allclose(cuda.score_samples(x), cpu.score_samples(x), rtol=1e-8)
    else:  # no GPU: auto falls back to the CPU reference (bit for bit), cuda is a clear error
        assert np.array_equal(auto.means_, cpu.means_)
        with pytest.raises(RuntimeError, match="backend not available"):
            gmm.GaussianMixture(3, device="cuda").fit(x)


# ---------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("params,error,message", [
    (dict(n_components=0), ValueError, "n_components must be >= 1"),
    (dict(n_components=2.5), ValueError, "'n_components' parameter"),
    (dict(tol=-1.0), ValueError, "tol must be >= 0"),
    (dict(reg_covar=-1e-3), ValueError, "reg_covar must be >= 0"),
    (dict(n_init=0), ValueError, "n_init must be >= 1"),
    (dict(covariance_type="banded"), ValueError, "'covariance_type' parameter"),
    (dict(init_params="best"), ValueError, "'init_params' parameter"),
    (dict(n_components=50), ValueError, "fewer than the 50 components"),
    (dict(n_components=2, weights_init=[0.5, 0.3, 0.2]), ValueError, "'weights_init' should have the shape"),
    (dict(n_components=2, weights_init=[1.0, -1.0]), ValueError, "weights_init\\[1\\] is -1"),
    (dict(n_components=2, means_init=np.zeros((2, 3))), ValueError, "'means_init' should have the shape"),
    (dict(n_components=2, covariance_type="diag", precisions_init=np.zeros((2, 2))), ValueError,
     "not positive definite"),
    (dict(random_state=-1), ValueError, "random_state"),
])
def test_bad_parameters(params, error, message):
    x = blobs(40)
    with pytest.raises(error, match=message):
        gmm.GaussianMixture(**params).fit(x)


def test_bad_data():
    est = gmm.GaussianMixture(2, random_state=0)
    x = blobs(100)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.where(np.arange(200).reshape(100, 2) == 7, np.nan, x))
    with pytest.raises(ValueError, match="2D array"):
        est.fit(x[:, 0])
    est.fit(x)
    with pytest.raises(ValueError, match="3 features"):
        est.predict(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least one sample"):
        est.sample(0)
    constant_column = np.column_stack([x[:, 0], np.ones(len(x))])
    with pytest.raises(ValueError, match="not positive definite"):
        gmm.GaussianMixture(2, reg_covar=0.0, random_state=0).fit(constant_column)


def test_warm_start_chain_converges_where_scikit_learn_does():
    """A chain of max_iter=1 warm starts carries the lower bound, as scikit-learn's does: both report
    convergence at the same fit of the chain (from the same initial parameters)."""
    x = blobs(3000, k=3, seed=5)
    init = gmm.GaussianMixture(3, random_state=0, max_iter=1, tol=1e-3)
    with pytest.warns(ConvergenceWarning):
        init.fit(x)
    params = dict(weights_init=init.weights_, means_init=init.means_, precisions_init=init.precisions_)

    def chain(make):
        est = make(n_components=3, max_iter=1, tol=1e-3, warm_start=True, **params)
        for fit in range(1, 60):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(x)
            if est.converged_:
                return fit, est
        return None, est

    ours, est_g = chain(gmm.GaussianMixture)
    theirs, est_s = chain(SkGaussianMixture)
    assert ours is not None and ours == theirs
    assert ours > 1  # the chain needed the carried lower bound: no single max_iter=1 fit converges alone
    np.testing.assert_allclose(est_g.lower_bound_, est_s.lower_bound_, rtol=1e-6)
