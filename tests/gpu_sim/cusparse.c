/* Stand-in for libcusparse.so.N (cuSPARSE): the version queries of cusparse.h. */
#include "sim_common.h"
#include "sim_version.h"

typedef enum { CUSPARSE_STATUS_SUCCESS = 0, CUSPARSE_STATUS_INVALID_VALUE = 3 } cusparseStatus_t;
typedef struct cusparseContext *cusparseHandle_t;

/* The handle is not needed to answer; NULL is accepted. */
SIM_API cusparseStatus_t cusparseGetVersion(cusparseHandle_t handle, int *version)
{
    (void)handle;
    return sim_store_version(version) == 0 ? CUSPARSE_STATUS_SUCCESS : CUSPARSE_STATUS_INVALID_VALUE;
}

SIM_API cusparseStatus_t cusparseGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CUSPARSE_STATUS_SUCCESS : CUSPARSE_STATUS_INVALID_VALUE;
}
