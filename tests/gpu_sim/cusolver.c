/* Stand-in for libcusolver.so.N (cuSOLVER): the version queries of cusolver_common.h. */
#include "sim_common.h"
#include "sim_version.h"

typedef enum { CUSOLVER_STATUS_SUCCESS = 0, CUSOLVER_STATUS_INVALID_VALUE = 3 } cusolverStatus_t;

SIM_API cusolverStatus_t cusolverGetVersion(int *version)
{
    return sim_store_version(version) == 0 ? CUSOLVER_STATUS_SUCCESS : CUSOLVER_STATUS_INVALID_VALUE;
}

SIM_API cusolverStatus_t cusolverGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CUSOLVER_STATUS_SUCCESS : CUSOLVER_STATUS_INVALID_VALUE;
}
