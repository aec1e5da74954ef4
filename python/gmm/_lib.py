"""The binding to the C library: cffi in ABI mode over libgmm_py.so.

The declarations are read from the gmm.h installed next to the shared library (preprocessor lines and the
C++ guard removed), so the Python side always sees the structures and functions of the library it loads;
the size of gmm_options, as cffi lays it out, is checked at import against the compiler's.  cffi releases
the GIL around every call into the library, so fits and inference run while other Python threads work.
"""

import os
import threading

import cffi
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


def _declarations(header_path):
    """The C declarations of gmm.h that cffi's cdef accepts: every preprocessor line and the contents of
    `#ifdef __cplusplus` blocks removed (comments are stripped by cffi itself)."""
    out, depth_cxx = [], 0
    with open(header_path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if s.startswith("#ifdef __cplusplus"):
                depth_cxx += 1
                continue
            if depth_cxx and s.startswith("#endif"):
                depth_cxx -= 1
                continue
            if depth_cxx or s.startswith("#"):
                continue
            out.append(line)
    return "".join(out)


def _load():
    ffi = cffi.FFI()
    ffi.cdef(_declarations(os.path.join(_HERE, "gmm.h")))
    ffi.cdef("size_t gmm_py_options_size(void);")
    lib = ffi.dlopen(os.path.join(_HERE, "libgmm_py.so"))
    if ffi.sizeof("gmm_options") != lib.gmm_py_options_size():
        raise ImportError(
            "gmm: gmm.h and libgmm_py.so disagree on sizeof(gmm_options) (%d != %d): reinstall the package"
            % (ffi.sizeof("gmm_options"), lib.gmm_py_options_size())
        )
    return ffi, lib


ffi, lib = _load()

# ------------------------------------------------------------------------------------------------ errors

_VALUE_ERRORS = {
    lib.GMM_ERR_INVALID_ARG,
    lib.GMM_ERR_PARSE,
    lib.GMM_ERR_NOT_PD,
    lib.GMM_ERR_COLLAPSED,
    lib.GMM_ERR_TOO_FEW_POINTS,
}


class _Interrupt(threading.local):
    """Per thread: the exception (KeyboardInterrupt from Ctrl-C, or whatever a signal handler raised) that
    reached a callback during the current call into the library, None when none did."""

    exc = None


_interrupt = _Interrupt()


def check(status):
    """Raises the Python exception for a gmm_status (with the library's message); returns on GMM_OK.
    Invalid input, malformed files and failed fits are ValueError, I/O failures OSError, out of memory
    MemoryError, CUDA and device failures RuntimeError; a fit stopped by the cancellation hook re-raises what
    stopped it (KeyboardInterrupt for Ctrl-C)."""
    if status == lib.GMM_OK:
        return
    text = ffi.string(lib.gmm_strerror(status)).decode()
    detail = ffi.string(lib.gmm_last_error()).decode()
    message = "%s: %s" % (text, detail) if detail else text
    if status == lib.GMM_ERR_CANCELLED:
        exc, _interrupt.exc = _interrupt.exc, None
        raise exc if exc is not None else KeyboardInterrupt(message)
    if status in _VALUE_ERRORS:
        raise ValueError(message)
    if status == lib.GMM_ERR_IO:
        raise OSError(message)
    if status == lib.GMM_ERR_NOMEM:
        raise MemoryError(message)
    raise RuntimeError(message)


def raise_pending():
    """Raises the exception a callback caught during the last call into the library, if any (one caught
    after the fit's last cancellation check, in its last progress callback, reaches the caller here)."""
    exc, _interrupt.exc = _interrupt.exc, None
    if exc is not None:
        raise exc


# ---------------------------------------------------------------------------------------- cancellation


def callback_error(exc_type, exc_value, tb):
    """cffi's onerror for every callback the library calls: an exception raised inside one (the
    KeyboardInterrupt of Ctrl-C, which Python delivers while a callback's Python code runs on the main
    thread) is kept, and the cancellation hook then stops the fit; returns 1 (stop) for the hook."""
    if _interrupt.exc is None:
        _interrupt.exc = exc_value if exc_value is not None else exc_type()
    return 1


@ffi.callback("int(void *)", onerror=callback_error)
def _should_stop(user):
    # Running Python code here lets the interpreter run pending signal handlers: Ctrl-C raises
    # KeyboardInterrupt in this frame and callback_error turns it into "stop".
    return 0 if _interrupt.exc is None else 1


def install_cancel_hook(opts):
    """Points opts.should_stop at the hook that stops a fit on Ctrl-C (or on an exception raised in another
    callback of the same call)."""
    _interrupt.exc = None
    opts.should_stop = _should_stop
    opts.should_stop_user = ffi.NULL


# ---------------------------------------------------------------------------------------------- arrays


def as_double_ptr(a):
    """A `const double *` onto a C-contiguous float64 array, without copying (the array must stay alive
    while the pointer is used)."""
    assert a.dtype == np.float64 and a.flags.c_contiguous
    return ffi.from_buffer("double[]", a)


def as_data_ptr(a):
    """(pointer, is_float32) onto a C-contiguous float64 or float32 data array, without copying: a
    `const double *` for float64 (the library's plain calls), a `const float *` for float32 (its _f32 calls,
    which read the floats in place and widen each value to double as they read it)."""
    assert a.flags.c_contiguous and a.dtype in (np.float64, np.float32)
    if a.dtype == np.float32:
        return ffi.from_buffer("float[]", a), True
    return ffi.from_buffer("double[]", a), False


def out_ptr(ctype, a):
    """A C array of ctype ("double[]", "int[]") onto the writable C-contiguous array a, without copying."""
    return ffi.from_buffer(ctype, a, require_writable=True)
