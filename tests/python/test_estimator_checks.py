"""scikit-learn's own estimator checks (sklearn.utils.estimator_checks), each one a test."""
from sklearn.utils.estimator_checks import parametrize_with_checks

import gmm


@parametrize_with_checks([gmm.GaussianMixture(), gmm.GaussianMixture(n_components=2, covariance_type="diag")])
def test_sklearn_check(estimator, check):
    check(estimator)
