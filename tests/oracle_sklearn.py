#!/usr/bin/env python3
"""oracle_sklearn.py GMM — holds gmm's CPU path to scikit-learn's GaussianMixture.

From identical initial parameters (weights_init, means_init, precisions_init) on the iris and wine data that
scikit-learn bundles and on generated data far from the origin, for every covariance type, `gmm fit` and
scikit-learn must reach the same model: lower bound rtol 1e-6, parameters rtol 1e-5 (with an absolute floor
of 1e-5 of the parameter's scale for entries near zero), identical labels, the same iteration count and the
same converged flag. Exits 0 when every case agrees, 1 otherwise, 77 (skipped) when numpy or scikit-learn
cannot be imported (scripts/test.sh installs them where Python is present).
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import sklearn
    from sklearn.datasets import load_iris, load_wine
    from sklearn.mixture import GaussianMixture
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: scikit-learn is not importable ({e})")
    sys.exit(77)

TYPES = ["full", "tied", "diag", "spherical"]


def datasets():
    rng = np.random.default_rng(2024)
    yield "iris", load_iris().data.astype(np.float64), 3
    yield "wine", load_wine().data.astype(np.float64), 3
    # far from the origin: unit-scale clusters offset by 1e4 (scikit-learn's own cancellation limits
    # how far we can go before the reference itself loses the digits we compare)
    centers = np.array([[0.0, 0.0, 0.0], [4.0, 1.0, 0.0], [0.0, 5.0, 2.0], [3.0, 3.0, 6.0]])
    x = np.concatenate([c + rng.normal(scale=[1.0, 0.7, 0.5], size=(500, 3)) for c in centers]) + 1e4
    yield "offset1e4", x, 4


def initial_params(x, k, cov_type, seed):
    """Deterministic initial parameters: k spread-out points as means, equal weights, and the data's
    (co)variance in the type's shape as every component's covariance, as precisions."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    means = x[rng.choice(n, size=k, replace=False)]
    weights = np.full(k, 1.0 / k)
    cov = np.cov(x.T, bias=True).reshape(d, d) + 1e-3 * np.eye(d)
    if cov_type == "full":
        prec = np.array([np.linalg.inv(cov)] * k)
    elif cov_type == "tied":
        prec = np.linalg.inv(cov)
    elif cov_type == "diag":
        prec = np.array([1.0 / np.diag(cov)] * k)
    else:
        prec = np.full(k, 1.0 / np.mean(np.diag(cov)))
    return weights, means, prec


def close(name, got, want, rtol, floor, problems):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        problems.append(f"{name}: shape {got.shape} vs {want.shape}")
        return
    atol = floor * max(np.max(np.abs(want)), 1e-300)
    bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))
    if bad.any():
        i = np.unravel_index(np.argmax(np.abs(got - want)), got.shape)
        problems.append(f"{name}: {bad.sum()} entries differ; worst at {i}: {got[i]!r} vs {want[i]!r}")


def main():
    if len(sys.argv) != 2:
        print("usage: oracle_sklearn.py PATH-TO-gmm")
        return 2
    gmm = sys.argv[1]
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    failures = 0
    cases = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, x, k in datasets():
            data = os.path.join(tmp, f"{name}.npy")
            np.save(data, x)
            for t in TYPES:
                cases += 1
                w0, mu0, p0 = initial_params(x, k, t, seed=cases)
                init = os.path.join(tmp, f"init-{name}-{t}.json")
                with open(init, "w") as f:
                    json.dump({"covariance_type": t, "weights": w0.tolist(), "means": mu0.tolist(),
                               "precisions": p0.tolist()}, f)
                ref = GaussianMixture(n_components=k, covariance_type=t, weights_init=w0, means_init=mu0,
                                      precisions_init=p0, tol=1e-3, reg_covar=1e-6, max_iter=300).fit(x)
                out = os.path.join(tmp, f"out-{name}-{t}")
                cmd = [gmm, "fit", data, "-k", str(k), "--covariance", t, "--init-model", init,
                       "--max-iter", "300", "--device", "cpu", "--quiet", "--out", out]
                run = subprocess.run(cmd, capture_output=True, text=True)
                problems = []
                if run.returncode != 0:
                    problems.append(f"gmm exited {run.returncode}: {run.stderr.strip()}")
                else:
                    with open(os.path.join(out, "model.json")) as f:
                        model = json.load(f)
                    fit = model["fit"]
                    labels = np.loadtxt(os.path.join(out, "labels.csv"), dtype=int)
                    if fit["n_iter"] != ref.n_iter_:
                        problems.append(f"n_iter {fit['n_iter']} vs {ref.n_iter_}")
                    if bool(fit["converged"]) != bool(ref.converged_):
                        problems.append(f"converged {fit['converged']} vs {ref.converged_}")
                    close("lower_bound", fit["lower_bound"], ref.lower_bound_, 1e-6, 0.0, problems)
                    close("weights", model["weights"], ref.weights_, 1e-5, 1e-5, problems)
                    close("means", model["means"], ref.means_, 1e-5, 1e-5, problems)
                    close("covariances", model["covariances"], ref.covariances_, 1e-5, 1e-5, problems)
                    pred = ref.predict(x)
                    if not np.array_equal(labels, pred):
                        problems.append(f"labels differ on {np.sum(labels != pred)} of {len(pred)} points")
                status = "ok" if not problems else "FAILED"
                print(f"{name:10s} {t:9s} n_iter {ref.n_iter_:3d} lower bound {ref.lower_bound_:.10f}: {status}")
                for p in problems:
                    print(f"    {p}")
                failures += bool(problems)
    print(f"{cases - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
