"""Agreement with scikit-learn itself: from identical initial parameters, on the data sets of the oracle test
(tests/oracle_sklearn.py: iris, wine, and clusters offset by 1e4) and every covariance type,
gmm.GaussianMixture and sklearn.mixture.GaussianMixture reach the same model with the oracle's tolerances
(same iteration count and converged flag, identical labels, lower bound rtol 1e-6, parameters rtol 1e-5),
and every method gives scikit-learn's answer on that model."""
import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import gmm
import oracle_sklearn as oracle

CASES = [(name, x, k, t) for name, x, k in oracle.datasets() for t in oracle.TYPES]


@pytest.mark.parametrize("name,x,k,cov", CASES, ids=["%s-%s" % (c[0], c[3]) for c in CASES])
def test_same_model_as_sklearn(name, x, k, cov):
    w0, mu0, p0 = oracle.initial_params(x, k, cov, seed=len(name) + len(cov))
    params = dict(n_components=k, covariance_type=cov, weights_init=w0, means_init=mu0, precisions_init=p0,
                  tol=1e-3, reg_covar=1e-6, max_iter=300)
    ref = SkGaussianMixture(**params).fit(x)
    est = gmm.GaussianMixture(**params).fit(x)
    problems = []
    assert est.n_iter_ == ref.n_iter_ and est.converged_ == ref.converged_
    oracle.close("lower_bound", est.lower_bound_, ref.lower_bound_, 1e-6, 0.0, problems)
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        oracle.close(attr, getattr(est, attr), getattr(ref, attr), 1e-5, 1e-5, problems)
    assert not problems, problems
    assert np.array_equal(est.predict(x), ref.predict(x))
    # the methods, on the same model: scikit-learn's estimator given gmm's fitted parameters (rtol 1e-6, the
    # oracle's: scikit-learn's expanded diag/spherical distances lose about 1e-7 at the 1e4 offset)
    same = est.to_sklearn()
    np.testing.assert_allclose(est.score_samples(x), same.score_samples(x), rtol=1e-6)
    np.testing.assert_allclose(est.predict_proba(x), same.predict_proba(x), rtol=1e-6, atol=1e-9)
    assert est.score(x) == pytest.approx(same.score(x), rel=1e-6)
    assert est.bic(x) == pytest.approx(same.bic(x), rel=1e-6)
    assert est.aic(x) == pytest.approx(same.aic(x), rel=1e-6)
    assert np.array_equal(est.predict(x), same.predict(x))
