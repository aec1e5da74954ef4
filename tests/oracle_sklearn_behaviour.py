#!/usr/bin/env python3
"""oracle_sklearn_behaviour.py GMM — holds `gmm fit` to scikit-learn's GaussianMixture where the behaviour is
more than the EM formulas (tests/oracle_sklearn.py holds the formulas):

- empty components: k = 10 on 2 distinct points, from identical initial parameters that leave components
  without data, for every covariance type: scikit-learn fits (N_k + 10 eps), and gmm must reach the same
  model (iterations, converged flag, lower bound rtol 1e-6, weights, means and covariances rtol 1e-5 with a
  floor of 1e-6 of the scale, labels);
- warm_start: a chain of max_iter = 1 fits from identical initial parameters on the bundled data; gmm's
  chain of `--warm-start` fits must report convergence at the same fit, with the same lower bounds;
- max_iter = 0: the given weights and means, n_iter 0, not converged, lower_bound_ -inf (null in model.json),
  no convergence warning;
- weights_init: refused by both when outside [0, 1] or not summing to 1 within 1e-8, accepted by both inside.

Exits 0 when every case agrees, 1 otherwise, 77 (skipped) when numpy or scikit-learn cannot be imported.
"""
import json
import os
import subprocess
import sys
import tempfile
import warnings

try:
    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: scikit-learn is not importable ({e})")
    sys.exit(77)

TYPES = ["full", "tied", "diag", "spherical"]
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from oracle_sklearn import close  # noqa: E402  (the one closeness check of both oracles)


def precisions(cov_type, k, d, scale):
    """Precisions of `scale` * identity in the type's shape."""
    if cov_type == "full":
        return np.array([np.eye(d) * scale] * k)
    if cov_type == "tied":
        return np.eye(d) * scale
    if cov_type == "diag":
        return np.full((k, d), scale)
    return np.full(k, scale)


def run_fit(gmm, data, k, out, *extra):
    cmd = [gmm, "fit", data, "-k", str(k), "--device", "cpu", "--quiet", "--out", out, *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def load_model(out):
    with open(os.path.join(out, "model.json")) as f:
        return json.load(f)


def write_init(path, cov_type, w, mu, prec):
    with open(path, "w") as f:
        json.dump({"covariance_type": cov_type, "weights": np.asarray(w).tolist(), "means": np.asarray(mu).tolist(),
                   "precisions": np.asarray(prec).tolist()}, f)


def empty_components(gmm, tmp):
    """k = 10 on 2 distinct points from a start whose components 3..10 sit far from both."""
    failures = 0
    x = np.array([[0.0, 0.0]] * 50 + [[1.0, 2.0]] * 50)
    data = os.path.join(tmp, "two.npy")
    np.save(data, x)
    k, d = 10, 2
    mu = np.array([[0.1, 0.1], [0.9, 1.9]] + [[5.0 + i, -5.0 - i] for i in range(8)])
    w = np.full(k, 1.0 / k)
    for t in TYPES:
        p = precisions(t, k, d, 4.0)
        init = os.path.join(tmp, f"empty-{t}.json")
        write_init(init, t, w, mu, p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = GaussianMixture(k, covariance_type=t, weights_init=w, means_init=mu, precisions_init=p).fit(x)
        out = os.path.join(tmp, f"empty-out-{t}")
        run = run_fit(gmm, data, k, out, "--covariance", t, "--init-model", init)
        problems = []
        if run.returncode != 0:
            problems.append(f"gmm exited {run.returncode}: {run.stderr.strip()}")
        else:
            model = load_model(out)
            fit = model["fit"]
            if fit["n_iter"] != ref.n_iter_:
                problems.append(f"n_iter {fit['n_iter']} vs {ref.n_iter_}")
            if bool(fit["converged"]) != bool(ref.converged_):
                problems.append(f"converged {fit['converged']} vs {ref.converged_}")
            close("lower_bound", fit["lower_bound"], ref.lower_bound_, 1e-6, 0.0, problems)
            close("weights", model["weights"], ref.weights_, 1e-5, 1e-12, problems)
            close("means", model["means"], ref.means_, 1e-5, 1e-6, problems)
            close("covariances", model["covariances"], ref.covariances_, 1e-5, 1e-6, problems)
            labels = np.loadtxt(os.path.join(out, "labels.csv"), dtype=int)
            if not np.array_equal(labels, ref.predict(x)):
                problems.append("labels differ")
            if "components emptied" not in run.stderr:
                problems.append("no warning naming the emptied components on stderr")
        print(f"empty components {t:9s} n_iter {ref.n_iter_} lower bound {ref.lower_bound_:.10f}: "
              f"{'ok' if not problems else 'FAILED'}")
        for p_ in problems:
            print(f"    {p_}")
        failures += bool(problems)
    return failures


def warm_start_chain(gmm, tmp, x, data):
    """max_iter = 1 warm starts from one start on the bundled data: the same fit converges, same bounds."""
    k, d = 4, 2
    rng = np.random.default_rng(7)
    mu = x[rng.choice(len(x), size=k, replace=False)]
    w = np.full(k, 1.0 / k)
    p = precisions("full", k, d, 10.0)
    init = os.path.join(tmp, "chain-init.json")
    write_init(init, "full", w, mu, p)
    ref = GaussianMixture(k, warm_start=True, max_iter=1, weights_init=w, means_init=mu, precisions_init=p)
    problems = []
    ref_at = gmm_at = 0
    prev = None
    for fit_no in range(1, 40):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref.fit(x)
        out = os.path.join(tmp, f"chain-{fit_no}")
        extra = ["--init-model", init] if prev is None else ["--warm-start", os.path.join(prev, "model.json")]
        run = run_fit(gmm, data, k, out, "--max-iter", "1", *extra)
        if run.returncode != 0:
            problems.append(f"fit {fit_no}: gmm exited {run.returncode}: {run.stderr.strip()}")
            break
        fit = load_model(out)["fit"]
        close(f"fit {fit_no} lower_bound", fit["lower_bound"], ref.lower_bound_, 1e-6, 0.0, problems)
        if ref.converged_ and not ref_at:
            ref_at = fit_no
        if fit["converged"] and not gmm_at:
            gmm_at = fit_no
        if ref_at and gmm_at:
            break
        prev = out
    if ref_at != gmm_at or not ref_at:
        problems.append(f"scikit-learn's chain converged at fit {ref_at}, gmm's at fit {gmm_at}")
    print(f"warm-start chain: scikit-learn converged at fit {ref_at}, gmm at fit {gmm_at}: "
          f"{'ok' if not problems else 'FAILED'}")
    for p_ in problems:
        print(f"    {p_}")
    return bool(problems)


def max_iter_zero(gmm, tmp, x, data):
    """Weights and means given, covariances from the kmeans responsibilities (scikit-learn 1.9.1 cannot be
    given all three with max_iter 0: it has no covariances_ to return then). k-means draws differ between
    the two (NumPy's generator against gmm's), so the covariances are not compared."""
    k = 4
    mu = np.array([[0.1, 0.1], [1.2, -1.2], [-0.4, -0.5], [-0.4, 0.3]])
    w = np.array([0.1, 0.2, 0.3, 0.4])
    init = os.path.join(tmp, "zero-init.json")
    with open(init, "w") as f:
        json.dump({"weights": w.tolist(), "means": mu.tolist()}, f)
    ref = GaussianMixture(k, max_iter=0, weights_init=w, means_init=mu, random_state=0).fit(x)
    out = os.path.join(tmp, "zero")
    run = run_fit(gmm, data, k, out, "--max-iter", "0", "--init-model", init)
    problems = []
    if run.returncode != 0:
        problems.append(f"gmm exited {run.returncode}: {run.stderr.strip()}")
    else:
        model = load_model(out)
        fit = model["fit"]
        if fit["n_iter"] != ref.n_iter_ or bool(fit["converged"]) != bool(ref.converged_):
            problems.append(f"n_iter/converged {fit['n_iter']}/{fit['converged']} vs {ref.n_iter_}/{ref.converged_}")
        if not (fit["lower_bound"] is None and ref.lower_bound_ == -np.inf):
            problems.append(f"lower_bound {fit['lower_bound']} vs {ref.lower_bound_}")
        close("weights", model["weights"], ref.weights_, 0.0, 0.0, problems)
        close("means", model["means"], ref.means_, 0.0, 0.0, problems)
        if "did not converge" in run.stderr:
            problems.append("a convergence warning, which scikit-learn does not give for max_iter 0")
    print(f"max_iter 0: {'ok' if not problems else 'FAILED'}")
    for p_ in problems:
        print(f"    {p_}")
    return bool(problems)


def weights_checks(gmm, tmp, x, data):
    failures = 0
    for w, ok in [([0.25, 0.25, 0.25, 0.3], False), ([1.5, -0.5, 0.0, 0.0], False),
                  ([0.25, 0.25, 0.25, 0.25 + 5e-9], True), ([0.0, 0.5, 0.25, 0.25], True)]:
        try:
            GaussianMixture(4, weights_init=np.array(w), max_iter=1).fit(x)
            ref_ok = True
        except ValueError:
            ref_ok = False
        init = os.path.join(tmp, "w.json")
        with open(init, "w") as f:
            json.dump({"weights": w}, f)
        run = run_fit(gmm, data, 4, os.path.join(tmp, "w-out"), "--max-iter", "1", "--init-model", init)
        gmm_ok = run.returncode == 0
        good = ref_ok == ok and gmm_ok == ok
        print(f"weights_init {w}: scikit-learn {'accepts' if ref_ok else 'refuses'}, gmm "
              f"{'accepts' if gmm_ok else 'refuses'}: {'ok' if good else 'FAILED'}")
        if not gmm_ok and init not in run.stderr:
            print("    gmm's message does not name the file")
            good = False
        failures += not good
    return failures


def main():
    if len(sys.argv) != 2:
        print("usage: oracle_sklearn_behaviour.py PATH-TO-gmm")
        return 2
    gmm = sys.argv[1]
    warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning and log(0) of a zero weight are expected
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    x = np.loadtxt(os.path.join(HERE, "..", "data", "TrainingData_GMM.csv"), delimiter=",")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "train.npy")
        np.save(data, x)
        failures = empty_components(gmm, tmp)
        failures += warm_start_chain(gmm, tmp, x, data)
        failures += max_iter_zero(gmm, tmp, x, data)
        failures += weights_checks(gmm, tmp, x, data)
    print(f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
