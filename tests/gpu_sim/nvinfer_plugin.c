/* Stand-in for libnvinfer_plugin.so.N (TensorRT plugins): initLibNvInferPlugins of NvInferPlugin.h.
 * build.py links it against the libnvinfer stand-in, so like the real plugin library it carries
 * DT_NEEDED libnvinfer.so.N: it fails to load without it, and getInferLibVersion resolves through it.
 */
#include "sim_common.h"

#include <stdbool.h>

SIM_API bool initLibNvInferPlugins(void *logger, const char *libNamespace)
{
    (void)logger;
    (void)libNamespace;
    return true;
}
