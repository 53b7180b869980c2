/* Stand-in for libcudart.so.11.0 (CUDA runtime API). Like the real runtime it dlopens libcuda.so.1
 * lazily, on the first call that needs the driver, and keeps the first failure (sticky errors).
 * A driver whose CUDA major version is older than the runtime's gets cudaErrorInsufficientDriver;
 * within one major version the minor-version compatibility of CUDA >= 11.1 lets it run.
 */
#include "sim_common.h"
#include "sim_version.h"

#include <dlfcn.h>

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInitializationError = 3,
    cudaErrorStubLibrary = 34,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorOperatingSystem = 304,
    cudaErrorSystemNotReady = 802,
    cudaErrorSystemDriverMismatch = 803,
    cudaErrorCompatNotSupportedOnDevice = 804,
    cudaErrorUnknown = 999
} cudaError_t;

typedef int (*cu_int_fn)(int *);
typedef int (*cu_init_fn)(unsigned int);

static int tried;
static cudaError_t init_error;
static void *libcuda;

/* cuInit's CUresult values for the failures above have the same numbers as their cudaError_t. */
static cudaError_t init_driver(void)
{
    cu_init_fn cu_init;
    cu_int_fn cu_driver_get_version;
    int version = 0, r;

    if (tried)
        return init_error;
    tried = 1;
    libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!libcuda)
        return init_error = cudaErrorInsufficientDriver;
    cu_init = (cu_init_fn)dlsym(libcuda, "cuInit");
    cu_driver_get_version = (cu_int_fn)dlsym(libcuda, "cuDriverGetVersion");
    if (!cu_init || !cu_driver_get_version)
        return init_error = cudaErrorInsufficientDriver;
    cu_driver_get_version(&version);
    if (version / 1000 < SIM_VERSION / 1000)
        return init_error = cudaErrorInsufficientDriver;
    r = cu_init(0);
    return init_error = (cudaError_t)r;
}

/* SIM_NO_VERSION_CALL: the call fails, as a copy that cannot answer it does. */
SIM_API cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
#ifdef SIM_NO_VERSION_CALL
    (void)runtimeVersion;
    return cudaErrorInitializationError;
#else
    if (!runtimeVersion)
        return cudaErrorInitializationError;
    *runtimeVersion = SIM_VERSION;
    return cudaSuccess;
#endif
}

/* 0 and cudaSuccess when no driver is installed, as documented. */
SIM_API cudaError_t cudaDriverGetVersion(int *driverVersion)
{
    cu_int_fn fn;
    void *handle;
    if (!driverVersion)
        return cudaErrorInitializationError;
    *driverVersion = 0;
    handle = libcuda ? libcuda : dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (!handle)
        return cudaSuccess;
    fn = (cu_int_fn)dlsym(handle, "cuDriverGetVersion");
    if (fn)
        fn(driverVersion);
    return cudaSuccess;
}

SIM_API cudaError_t cudaGetDeviceCount(int *count)
{
    cu_int_fn fn;
    cudaError_t r;
    if (!count)
        return cudaErrorInitializationError;
    *count = 0;
    r = init_driver();
    if (r != cudaSuccess)
        return r;
    fn = (cu_int_fn)dlsym(libcuda, "cuDeviceGetCount");
    return fn ? (cudaError_t)fn(count) : cudaErrorInsufficientDriver;
}

/* Each cudaError_t this stand-in can return, with the texts cuda_runtime_api.h documents. */
static const sim_error errors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorStubLibrary, "cudaErrorStubLibrary", "CUDA driver is a stub library"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver", "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorOperatingSystem, "cudaErrorOperatingSystem", "OS call failed or operation not supported on this OS"},
    {cudaErrorSystemNotReady, "cudaErrorSystemNotReady", "system not yet initialized"},
    {cudaErrorSystemDriverMismatch, "cudaErrorSystemDriverMismatch", "system has unsupported display driver / cuda driver combination"},
    {cudaErrorCompatNotSupportedOnDevice, "cudaErrorCompatNotSupportedOnDevice", "forward compatibility was attempted on non supported HW"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

/* Unknown codes read as cudaErrorUnknown. */
static const sim_error *describe(cudaError_t error)
{
    const sim_error *e = sim_find_error(errors, sizeof errors / sizeof errors[0], error);
    return e ? e : &errors[sizeof errors / sizeof errors[0] - 1];
}

SIM_API const char *cudaGetErrorName(cudaError_t error) { return describe(error)->name; }
SIM_API const char *cudaGetErrorString(cudaError_t error) { return describe(error)->text; }
