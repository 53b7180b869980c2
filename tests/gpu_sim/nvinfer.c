/* Stand-in for libnvinfer.so.N (TensorRT): getInferLibVersion of NvInferRuntime.h (extern "C"). */
#include "sim_common.h"
#include "sim_version.h"

#include <stdint.h>

SIM_API int32_t getInferLibVersion(void) { return SIM_VERSION; }
