/* Stand-in for libcublasLt.so.N (cuBLASLt): the version queries of cublasLt.h. */
#include "sim_common.h"
#include "sim_version.h"

#include <stddef.h>

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;

SIM_API size_t cublasLtGetVersion(void) { return SIM_VERSION; }
SIM_API size_t cublasLtGetCudartVersion(void) { return SIM_CUDART_VERSION; }

SIM_API cublasStatus_t cublasLtGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
