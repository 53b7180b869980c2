/* Stand-in for libcufft.so.N (cuFFT): the version queries of cufft.h. */
#include "sim_common.h"
#include "sim_version.h"

typedef enum cufftResult_t { CUFFT_SUCCESS = 0x0, CUFFT_INVALID_VALUE = 0x4 } cufftResult;

SIM_API cufftResult cufftGetVersion(int *version)
{
    return sim_store_version(version) == 0 ? CUFFT_SUCCESS : CUFFT_INVALID_VALUE;
}

SIM_API cufftResult cufftGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CUFFT_SUCCESS : CUFFT_INVALID_VALUE;
}
