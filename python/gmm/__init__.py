"""gmm: Gaussian mixture models by EM in C (CPU reference and CUDA), with scikit-learn's interface.

    import gmm
    model = gmm.GaussianMixture(n_components=4, random_state=0).fit(X)
    labels = model.predict(X)

gmm.GaussianMixture takes sklearn.mixture.GaussianMixture's parameters and gives its attributes and
methods, plus device ('cpu', 'cuda', 'auto') and dtype; gmm.load(path) reads a model saved by the CLI.
"""

from ._mixture import GaussianMixture, load

__all__ = ["GaussianMixture", "load"]
__version__ = "0.1.0"
