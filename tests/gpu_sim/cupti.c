/* Stand-in for libcupti.so.N (CUPTI): cuptiGetVersion of cupti_version.h, which returns the CUPTI
 * API version (15 for CUDA 11.2-11.4), not the toolkit version.
 */
#include "sim_common.h"
#include "sim_version.h"

#include <stdint.h>

typedef enum { CUPTI_SUCCESS = 0, CUPTI_ERROR_INVALID_PARAMETER = 1 } CUptiResult;

SIM_API CUptiResult cuptiGetVersion(uint32_t *version)
{
    if (!version)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *version = SIM_VERSION;
    return CUPTI_SUCCESS;
}
