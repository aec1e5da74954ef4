"""gmm.GaussianMixture: scikit-learn's GaussianMixture (same parameters, defaults, attributes and methods)
over the C library. Every option goes to the library as it is; this layer validates only what a C call
needs to be memory-safe (array shapes), converts arrays, and turns results into scikit-learn's attributes.
"""

import numbers
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _lib
from ._lib import ffi, lib

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(est, X, **kw):
        return est._validate_data(X, **kw)


_COVARIANCE = {"full": 0, "tied": 1, "diag": 2, "spherical": 3}
_INIT = {"kmeans": 0, "k-means++": 1, "random": 2, "random_from_data": 3, "binary": 4}
_DEVICE = {"cpu": 0, "cuda": 1, "auto": 2}
_GPU_DTYPE = {"float32": 0, "float64": 1}
_FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "converged_",
           "n_iter_", "lower_bound_", "n_features_in_")


def _choice(name, value, table):
    if not isinstance(value, str) or value not in table:
        raise ValueError("The '%s' parameter of GaussianMixture must be one of %s. Got %r instead."
                         % (name, sorted(table), value))
    return table[value]


def _int_param(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError("The '%s' parameter of GaussianMixture must be an int. Got %r instead." % (name, value))
    return int(value)


def _real_param(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError("The '%s' parameter of GaussianMixture must be a float. Got %r instead." % (name, value))
    return float(value)


def _seed(random_state):
    """The library's 64-bit seed: an int random_state is used as it is (so the CLI's --seed S gives the same
    fit), None and RandomState instances draw one as scikit-learn draws from them."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) < 2**64:
            raise ValueError("random_state must be in [0, 2**64) (got %d)" % random_state)
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _f64(a, shape, name):
    """a as a C-contiguous float64 array of exactly shape (the library reads that many doubles)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    if a.shape != shape:
        raise ValueError("The parameter '%s' should have the shape %s, but got %s" % (name, shape, a.shape))
    return a


def _cov_shape(covariance_type, k, d):
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def _compact(full, covariance_type):
    """Covariances (k, d, d) as the library hands them out, in the type's own (scikit-learn's) shape."""
    if covariance_type == "full":
        return full.copy()
    if covariance_type == "tied":
        return full[0].copy()
    diag = np.ascontiguousarray(np.diagonal(full, axis1=1, axis2=2))
    return diag if covariance_type == "diag" else diag[:, 0].copy()


def _precision_cholesky(cov, covariance_type):
    """scikit-learn's precisions_cholesky_: upper-triangular U = L^-T with covariance L L^T, so that
    precision = U U^T (full, tied), or 1 / sqrt(variance) (diag, spherical)."""
    if covariance_type in ("diag", "spherical"):
        return 1.0 / np.sqrt(cov)
    chol = np.linalg.cholesky(cov)
    eye = np.broadcast_to(np.eye(cov.shape[-1]), cov.shape)
    return np.swapaxes(np.linalg.solve(chol, eye), -1, -2)


def _precisions(prec_chol, covariance_type):
    if covariance_type in ("diag", "spherical"):
        return prec_chol**2
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return np.einsum("kij,klj->kil", prec_chol, prec_chol)


def _array_from_c(ptr, shape, dtype):
    count = int(np.prod(shape))
    return np.frombuffer(ffi.buffer(ptr, count * np.dtype(dtype).itemsize), dtype=dtype).reshape(shape).copy()


class _Progress:
    """scikit-learn's verbose output (BaseMixture._print_verbose_msg_*), fed by the library's per-iteration
    callback: "Initialization r", "  Iteration i[\\t time lapse ...\\t ll change ...]" every verbose_interval
    iterations, "Initialization converged|did not converge.[ time lapse ...\\t lower bound ...]"."""

    def __init__(self, verbose, verbose_interval, tol, n):
        self.verbose, self.interval, self.tol, self.n = verbose, max(1, verbose_interval), tol, n
        self.run = None
        self.callback = ffi.callback("void(void *, int, int, double, double, double)", self._on_iter,
                                     onerror=_lib.callback_error)

    def _on_iter(self, user, run, it, loglik, change, seconds):
        now = time.perf_counter()
        if run != self.run:
            self.end()
            self.run, self.t_init, self.t_iter = run, now - seconds, now - seconds
            print("Initialization %d" % run)
        self.last = (it, loglik / self.n, change)
        if it % self.interval == 0:
            if self.verbose == 1:
                print("  Iteration %d" % it)
            else:
                print("  Iteration %d\t time lapse %.5fs\t ll change %.5f" % (it, now - self.t_iter, change))
            self.t_iter = now

    def end(self):
        """The end message of the current run (a run ends when the next one starts or the fit returns)."""
        if self.run is None:
            return
        it, lb, change = self.last
        msg = "converged" if it > 1 and abs(change) < self.tol else "did not converge"
        if self.verbose == 1:
            print("Initialization %s." % msg)
        else:
            print("Initialization %s. time lapse %.5fs\t lower bound %.5f." % (msg, time.perf_counter() - self.t_init, lb))
        self.run = None


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM in the gmm C library: scikit-learn's GaussianMixture with the same
    parameters, defaults, fitted attributes and methods (see sklearn.mixture.GaussianMixture), plus

    init_params : also 'binary' (means drawn from {0,1}^d, identity covariances, equal weights).
    device : 'cpu' (default: the double-precision reference), 'cuda' (an NVIDIA GPU; RuntimeError when
        none is usable) or 'auto' (a GPU when one is usable and the model fits its kernels, else the CPU).
        fit, predict, predict_proba, score_samples, score, bic and aic run there.
    dtype : None (the library's default), 'float32' or 'float64': the precision of the data on the GPU.

    Fitted attributes are scikit-learn's, plus lower_bounds_ (the mean log-likelihood per iteration of the
    best run) and device_ (where the fit ran).
    """

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100,
                 n_init=1, init_params="kmeans", weights_init=None, means_init=None, precisions_init=None,
                 random_state=None, warm_start=False, verbose=0, verbose_interval=10, device="cpu",
                 dtype=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------------------------------ options

    def _device_options(self):
        """gmm_options with the library's defaults and this estimator's device and dtype (all inference
        needs); returns the cdata."""
        o = ffi.new("gmm_options *")
        lib.gmm_options_init(o)
        o.backend = _choice("device", self.device, _DEVICE)
        if self.dtype is not None:
            o.gpu_float64 = _choice("dtype", self.dtype, _GPU_DTYPE)
        return o

    def _fit_options(self, d, keep):
        """The fit's gmm_options; arrays the options point to are appended to keep (they must outlive the
        call)."""
        o = self._device_options()
        k = _int_param("n_components", self.n_components)
        o.n_components = k
        o.covariance_type = _choice("covariance_type", self.covariance_type, _COVARIANCE)
        o.tol = _real_param("tol", self.tol)
        o.reg_covar = _real_param("reg_covar", self.reg_covar)
        o.max_iter = _int_param("max_iter", self.max_iter)
        o.n_init = _int_param("n_init", self.n_init)
        o.init = _choice("init_params", self.init_params, _INIT)
        o.seed = _seed(self.random_state)
        if k < 1:  # the shapes below need k >= 1; the library says the same for every other check
            raise ValueError("n_components must be >= 1 (got %d)" % k)
        init = {"weights_init": (self.weights_init, (k,)), "means_init": (self.means_init, (k, d)),
                "precisions_init": (self.precisions_init, _cov_shape(self.covariance_type, k, d))}
        if self.warm_start and hasattr(self, "converged_"):
            # scikit-learn's warm start: one run from the last fit's parameters
            o.n_init = 1
            init = {"weights_init": (self.weights_, (k,)), "means_init": (self.means_, (k, d)),
                    "precisions_init": (self.precisions_, _cov_shape(self.covariance_type, k, d))}
            # and its lower bound, which the first iteration's change is measured from (-inf after max_iter 0)
            o.warm_lower_bound = float(self.lower_bound_)
        for name, (value, shape) in init.items():
            if value is not None:
                a = _f64(value, shape, name)
                keep.append(a)
                setattr(o, name, _lib.as_double_ptr(a))
        return o

    # ------------------------------------------------------------------------------------------ fitting

    def _check_X(self, X, reset):
        """X validated as scikit-learn does, as a C-contiguous float64 or float32 array the library reads in
        place: a C-contiguous float64 or float32 array is X itself (no copy), any other is converted once
        (float32 stays float32, every other dtype becomes float64)."""
        return _validate_data(self, X, dtype=[np.float64, np.float32], order="C", reset=reset,
                              ensure_min_samples=2 if reset else 1)

    def _fit(self, X, want_labels):
        X = self._check_X(X, reset=not (self.warm_start and hasattr(self, "converged_")))
        n, d = X.shape
        keep = []
        o = self._fit_options(d, keep)
        verbose = _int_param("verbose", self.verbose)
        progress = None
        if verbose > 0:
            progress = _Progress(verbose, _int_param("verbose_interval", self.verbose_interval), o.tol, n)
            o.on_iter, o.on_iter_user = progress.callback, ffi.NULL
        _lib.install_cancel_hook(o)
        out = ffi.new("gmm_model **")
        x, f32 = _lib.as_data_ptr(X)
        if want_labels:
            labels = np.empty(n, dtype=np.intc)
            fit_predict = lib.gmm_fit_predict_f32 if f32 else lib.gmm_fit_predict
            status = fit_predict(x, n, d, o, out, _lib.out_ptr("int[]", labels))
        else:
            labels = None
            status = (lib.gmm_fit_f32 if f32 else lib.gmm_fit)(x, n, d, o, out)
        model = ffi.gc(out[0], lib.gmm_model_free) if out[0] != ffi.NULL else None
        _lib.check(status)
        _lib.raise_pending()  # Ctrl-C caught in the last progress callback, after the last cancellation check
        if progress is not None:
            progress.end()
        self._set_fitted(model, n)
        if not self.converged_:
            warnings.warn("Best performing initialization did not converge. Try different init parameters, "
                          "or increase max_iter, tol, or check for degenerate data.", ConvergenceWarning)
        return labels

    def _set_fitted(self, model, n_train):
        """scikit-learn's fitted attributes from a library model (its parameters and fit record; the
        per-iteration lower_bounds_ when the number of training points n_train is known)."""
        k, d = lib.gmm_model_n_components(model), lib.gmm_model_n_features(model)
        self.weights_ = _array_from_c(lib.gmm_model_weights(model), (k,), np.float64)
        self.means_ = _array_from_c(lib.gmm_model_means(model), (k, d), np.float64)
        full = _array_from_c(lib.gmm_model_covariances(model), (k, d, d), np.float64)
        self.covariances_ = _compact(full, self.covariance_type)
        self.precisions_cholesky_ = _precision_cholesky(self.covariances_, self.covariance_type)
        self.precisions_ = _precisions(self.precisions_cholesky_, self.covariance_type)
        self.converged_ = bool(lib.gmm_model_converged(model))
        self.n_iter_ = int(lib.gmm_model_n_iter(model))
        self.lower_bound_ = float(lib.gmm_model_lower_bound(model))
        length = ffi.new("int *")
        trace = lib.gmm_model_loglik_trace(model, length)
        if n_train:
            self.lower_bounds_ = _array_from_c(trace, (length[0],), np.float64) / n_train
        self.device_ = ffi.string(lib.gmm_model_device(model)).decode()
        self._model = model

    def fit(self, X, y=None):
        """Fits the mixture to X (n_samples, n_features) by EM; returns self."""
        self._fit(X, want_labels=False)
        return self

    def fit_predict(self, X, y=None):
        """Fits, then returns the label of every point of X under the final model (one pass on the fit's
        device, on the data it already holds)."""
        return self._fit(X, want_labels=True).astype(np.intp)

    # ---------------------------------------------------------------------------------------- inference

    def _c_model(self):
        """The library model of the fitted parameters: the fit's own, or (after unpickling, copying or
        from_sklearn) one built from weights_, means_ and covariances_."""
        check_is_fitted(self)
        model = self.__dict__.get("_model")
        if model is not None:
            return model
        k, d = self.means_.shape
        w = _f64(self.weights_, (k,), "weights_")
        mu = _f64(self.means_, (k, d), "means_")
        cov = _f64(self.covariances_, _cov_shape(self.covariance_type, k, d), "covariances_")
        out = ffi.new("gmm_model **")
        _lib.check(lib.gmm_model_from_params(k, d, _COVARIANCE[self.covariance_type], _lib.as_double_ptr(w),
                                             _lib.as_double_ptr(mu), _lib.as_double_ptr(cov), out))
        return ffi.gc(out[0], lib.gmm_model_free)

    def _infer(self, X, logp=False, labels=False, resp=False):
        model = self._c_model()
        X = self._check_X(X, reset=False)
        n = X.shape[0]
        k = lib.gmm_model_n_components(model)
        outs = {"logp": np.empty(n) if logp else None, "labels": np.empty(n, dtype=np.intc) if labels else None,
                "resp": np.empty((n, k)) if resp else None}
        ptr = {name: (_lib.out_ptr("int[]" if name == "labels" else "double[]", a) if a is not None else ffi.NULL)
               for name, a in outs.items()}
        x, f32 = _lib.as_data_ptr(X)
        infer = lib.gmm_infer_f32 if f32 else lib.gmm_infer
        _lib.check(infer(model, x, n, self._device_options(), ptr["logp"], ptr["labels"], ptr["resp"]))
        return outs

    def score_samples(self, X):
        """log p(x) of every point of X."""
        return self._infer(X, logp=True)["logp"]

    def score(self, X, y=None):
        """Mean per-point log-likelihood of X."""
        return float(self.score_samples(X).mean())

    def predict(self, X):
        """The most responsible component of every point of X."""
        return self._infer(X, labels=True)["labels"].astype(np.intp)

    def predict_proba(self, X):
        """Responsibilities (n_samples, n_components) of every point of X."""
        return self._infer(X, resp=True)["resp"]

    def _n_parameters(self):
        """Number of free parameters of the model (scikit-learn's count)."""
        return int(lib.gmm_n_parameters(self._c_model()))

    def bic(self, X):
        """Bayesian information criterion of the model on X (lower is better)."""
        n = np.asarray(X).shape[0] if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion of the model on X (lower is better)."""
        n = np.asarray(X).shape[0] if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """n_samples points drawn from the model and their components: (X, y). The draws derive from
        random_state (an int gives the same points as `gmm sample -n N --seed S`)."""
        model = self._c_model()
        n_samples = _int_param("n_samples", n_samples)
        if n_samples < 1:
            raise ValueError("Invalid value for 'n_samples': %d . The sampling requires at least one sample."
                             % n_samples)
        x_out, labels_out = ffi.new("double **"), ffi.new("int **")
        _lib.check(lib.gmm_sample(model, n_samples, _seed(self.random_state), x_out, labels_out))
        try:
            d = lib.gmm_model_n_features(model)
            X = _array_from_c(x_out[0], (n_samples, d), np.float64)
            y = _array_from_c(labels_out[0], (n_samples,), np.intc).astype(np.intp)
        finally:
            lib.gmm_free(x_out[0])
            lib.gmm_free(labels_out[0])
        return X, y

    # ----------------------------------------------------------------------------------- interoperation

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_model", None)  # rebuilt from the parameters when needed
        return state

    def to_sklearn(self):
        """A fitted sklearn.mixture.GaussianMixture with the same parameters and fitted attributes
        (init_params 'binary', which scikit-learn lacks, becomes its default 'kmeans')."""
        from sklearn.mixture import GaussianMixture as SkGaussianMixture

        check_is_fitted(self)
        names = SkGaussianMixture().get_params()
        params = {name: value for name, value in self.get_params().items() if name in names}
        if params.get("init_params") == "binary":
            params["init_params"] = "kmeans"
        est = SkGaussianMixture(**params)
        for name in _FITTED + ("lower_bounds_",):
            if hasattr(self, name):
                setattr(est, name, np.copy(getattr(self, name)) if isinstance(getattr(self, name), np.ndarray)
                        else getattr(self, name))
        return est

    @classmethod
    def from_sklearn(cls, est):
        """A GaussianMixture with the parameters (and, when it is fitted, the fitted attributes) of the
        sklearn.mixture.GaussianMixture est."""
        names = cls().get_params()
        ours = cls(**{name: value for name, value in est.get_params().items() if name in names})
        for name in _FITTED + ("lower_bounds_",):
            if hasattr(est, name):
                value = getattr(est, name)
                setattr(ours, name, np.copy(value) if isinstance(value, np.ndarray) else value)
        return ours


def load(path):
    """A fitted GaussianMixture from a model file saved by the CLI (`gmm fit ... --out DIR` writes
    DIR/model.json) or by gmm_model_save; a hand-written file with weights, means and covariances works too."""
    out = ffi.new("gmm_model **")
    _lib.check(lib.gmm_model_load(str(path).encode(), out))
    model = ffi.gc(out[0], lib.gmm_model_free)
    ctype = lib.gmm_model_covariance_type(model)
    est = GaussianMixture(n_components=int(lib.gmm_model_n_components(model)),
                          covariance_type={v: name for name, v in _COVARIANCE.items()}[ctype])
    est._set_fitted(model, 0)
    est.n_features_in_ = int(lib.gmm_model_n_features(model))
    return est
