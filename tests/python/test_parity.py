"""Parity with the C library: the same data, seed and options give bit-identical parameters and fit records
through gmm.GaussianMixture and through the CLI (`gmm fit`); a model the CLI saved loads with gmm.load and
predicts, scores and samples as the CLI does."""
import json
import subprocess

import numpy as np
import pytest

import gmm


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    rng = np.random.default_rng(7)
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 1.0], [2.0, -4.0, 3.0]])
    x = np.concatenate([c + rng.normal(scale=[1.0, 0.6, 1.3], size=(700, 3)) for c in centers])
    rng.shuffle(x)
    path = tmp_path_factory.mktemp("data") / "blobs.npy"
    np.save(path, x)
    return x, path


def cli_fit(gmm_cli, data, out, *args):
    run = subprocess.run([gmm_cli, "fit", str(data), "--quiet", "--device", "cpu", "--out", str(out), *args],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    with open(out / "model.json") as f:
        return json.load(f)


def same_bits(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data", "binary"])
def test_fit_bit_identical_to_cli(gmm_cli, blobs, tmp_path, cov, init):
    x, data = blobs
    model = cli_fit(gmm_cli, data, tmp_path, "-k", "4", "--covariance", cov, "--init", init, "--seed", "11",
                    "--n-init", "2", "--tol", "1e-4", "--max-iter", "60")
    est = gmm.GaussianMixture(4, covariance_type=cov, init_params=init, random_state=11, n_init=2, tol=1e-4,
                              max_iter=60).fit(x)
    assert same_bits(est.weights_, model["weights"])
    assert same_bits(est.means_, model["means"])
    assert same_bits(est.covariances_, model["covariances"])
    fit = model["fit"]
    assert est.n_iter_ == fit["n_iter"] and est.converged_ == bool(fit["converged"])
    assert same_bits(est.lower_bound_, fit["lower_bound"])
    assert same_bits(est.lower_bounds_, np.array(fit["loglik_trace"]) / len(x))
    labels = np.loadtxt(tmp_path / "labels.csv", dtype=int)
    assert np.array_equal(est.predict(x), labels)


def test_load_cli_model(gmm_cli, blobs, tmp_path):
    x, data = blobs
    model = cli_fit(gmm_cli, data, tmp_path, "-k", "4", "--covariance", "diag", "--seed", "3")
    est = gmm.load(tmp_path / "model.json")
    assert est.n_components == 4 and est.covariance_type == "diag" and est.n_features_in_ == 3
    assert same_bits(est.means_, model["means"]) and same_bits(est.covariances_, model["covariances"])
    assert est.n_iter_ == model["fit"]["n_iter"] and est.converged_ == bool(model["fit"]["converged"])
    labels = np.loadtxt(tmp_path / "labels.csv", dtype=int)
    assert np.array_equal(est.predict(x), labels)
    score = subprocess.run([gmm_cli, "score", str(tmp_path / "model.json"), str(data), "--device", "cpu"],
                           capture_output=True, text=True, check=True).stdout
    cli = dict(line.split(": ") for line in score.splitlines())
    # the CLI sums in index order, numpy's mean pairwise: the same log p(x_i), summed two ways
    assert est.score(x) == pytest.approx(float(cli["mean log-likelihood"]), rel=1e-12)
    assert est.bic(x) == pytest.approx(float(cli["BIC"]), rel=1e-12)
    assert est.aic(x) == pytest.approx(float(cli["AIC"]), rel=1e-12)
    sample = subprocess.run([gmm_cli, "sample", str(tmp_path / "model.json"), "-n", "50", "--seed", "9"],
                            capture_output=True, text=True, check=True).stdout
    cli_points = np.loadtxt(sample.splitlines(), delimiter=",", ndmin=2)
    est.set_params(random_state=9)
    points, comps = est.sample(50)
    assert np.array_equal(points, cli_points) and comps.shape == (50,)


def test_load_errors_are_python_errors(tmp_path):
    with pytest.raises(OSError, match="missing.json"):
        gmm.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"weights": [1.0], "means": [[0.0, 1.0]]')
    with pytest.raises(ValueError, match="bad.json"):
        gmm.load(bad)
