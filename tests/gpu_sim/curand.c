/* Stand-in for libcurand.so.N (cuRAND): the version queries of curand.h. */
#include "sim_common.h"
#include "sim_version.h"

typedef enum curandStatus { CURAND_STATUS_SUCCESS = 0, CURAND_STATUS_OUT_OF_RANGE = 105 } curandStatus_t;

SIM_API curandStatus_t curandGetVersion(int *version)
{
    return sim_store_version(version) == 0 ? CURAND_STATUS_SUCCESS : CURAND_STATUS_OUT_OF_RANGE;
}

SIM_API curandStatus_t curandGetProperty(libraryPropertyType type, int *value)
{
    return sim_store_property(type, value) == 0 ? CURAND_STATUS_SUCCESS : CURAND_STATUS_OUT_OF_RANGE;
}
