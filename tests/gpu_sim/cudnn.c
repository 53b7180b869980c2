/* Stand-in for libcudnn.so.N (cuDNN): the version queries of cudnn_version.h / cudnn_ops_infer.h.
 * TensorFlow compares cudnnGetProperty's MAJOR/MINOR against the version it was built with.
 */
#include "sim_common.h"
#include "sim_version.h"

#include <stddef.h>

typedef enum { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_BAD_PARAM = 3 } cudnnStatus_t;

SIM_API size_t cudnnGetCudartVersion(void) { return SIM_CUDART_VERSION; }

/* SIM_NO_VERSION_CALL: a build whose version queries are missing (a stripped or damaged copy). */
#ifndef SIM_NO_VERSION_CALL
SIM_API size_t cudnnGetVersion(void) { return SIM_VERSION; }

SIM_API cudnnStatus_t cudnnGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}
#endif
