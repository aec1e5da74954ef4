/*
 * gmm_py.c — the one C addition of the Python package's shared library (libgmm_py.so, which also holds the
 * whole library): the size of gmm_options as the compiler laid it out, so that the package can check at
 * import that the declarations cffi read from gmm.h give the same layout.
 */
#include "gmm.h"

/* sizeof(gmm_options) in this build. */
size_t gmm_py_options_size(void);

size_t gmm_py_options_size(void) { return sizeof(gmm_options); }
