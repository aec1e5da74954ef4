/*
 * fuzz_model_json.c — libFuzzer target for the model-JSON loader (gmm_model_load on a file ending in .json):
 * each input is written to a per-process temporary file and read back through the public API, and the
 * invariants of fuzz_common.h are checked (a violated one calls abort(), which libFuzzer reports).
 * Built by the CMake option GMM_FUZZ (clang only); run by scripts/fuzz.sh.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(FUZZ_JSON, data, size);
    return 0;
}
