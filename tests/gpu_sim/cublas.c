/* Stand-in for libcublas.so.N (cuBLAS): the version queries of cublas_api.h / cublas.h. */
#include "sim_common.h"
#include "sim_version.h"

#include <stddef.h>

typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;
typedef struct cublasContext *cublasHandle_t;

/* The handle is not needed to answer; NULL is accepted. */
SIM_API cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int *version)
{
    (void)handle;
    return sim_store_version(version) == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

/* The legacy cublas.h entry point, exported under its plain name. */
SIM_API cublasStatus_t cublasGetVersion(int *version) { return cublasGetVersion_v2(NULL, version); }

SIM_API cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

SIM_API size_t cublasGetCudartVersion(void) { return SIM_CUDART_VERSION; }
