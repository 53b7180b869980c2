/* Stand-in for libcuda.so.1 (CUDA driver API): initialisation, version and device enumeration.
 * Signatures follow cuda.h. Unlike NVML, it honours CUDA_VISIBLE_DEVICES (indices or GPU-UUID
 * prefixes, parsing stops at the first invalid entry, so "" and "-1" hide every GPU) and, like a
 * MIG-enabled GPU without MIG instances, a device in MIG mode gives CUDA no device.
 */
#include "sim_common.h"
#include "sim_config.h"

#include <stdlib.h>
#include <string.h>

typedef enum cudaError_enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_DEINITIALIZED = 4,
    CUDA_ERROR_STUB_LIBRARY = 34,
    CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
    CUDA_ERROR_NO_DEVICE = 100,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_OPERATING_SYSTEM = 304,
    CUDA_ERROR_SYSTEM_NOT_READY = 802,
    CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803,
    CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE = 804,
    CUDA_ERROR_UNKNOWN = 999
} CUresult;

typedef int CUdevice;

typedef enum CUdevice_attribute_enum {
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76
} CUdevice_attribute;

static int initialized;
static int nvisible;
static int visible[SIM_MAX_DEVICES];  /* CUDA ordinal -> simulated device index */

static int is_visible(int index)
{
    int i;
    for (i = 0; i < nvisible; i++)
        if (visible[i] == index)
            return 1;
    return 0;
}

/* Maps one CUDA_VISIBLE_DEVICES entry to a device index among candidates, or -1. */
static int resolve_entry(const char *entry, const int *candidates, int ncandidates)
{
    const sim_config *c = sim_config_get();
    int i, found = -1;
    char *end;
    long ordinal;

    if (strncmp(entry, "GPU-", 4) == 0) {
        for (i = 0; i < ncandidates; i++)
            if (strncmp(c->devices[candidates[i]].uuid, entry, strlen(entry)) == 0) {
                if (found >= 0)
                    return -1;  /* ambiguous prefix */
                found = candidates[i];
            }
        return found;
    }
    ordinal = strtol(entry, &end, 10);
    if (end == entry || *end != '\0' || ordinal < 0 || ordinal >= ncandidates)
        return -1;
    return candidates[ordinal];
}

static void enumerate(void)
{
    const sim_config *c = sim_config_get();
    const char *env = getenv("CUDA_VISIBLE_DEVICES");
    int candidates[SIM_MAX_DEVICES];
    int i, ncandidates = 0;
    char list[1024], *entry, *next;

    for (i = 0; i < c->ndevices; i++)
        if (c->devices[i].mig_current != 1)
            candidates[ncandidates++] = i;
    nvisible = 0;
    if (!env) {
        memcpy(visible, candidates, sizeof(int) * (size_t)ncandidates);
        nvisible = ncandidates;
        return;
    }
    strncpy(list, env, sizeof list - 1);
    list[sizeof list - 1] = '\0';
    for (entry = list; *entry; entry = next) {
        int index;
        next = strchr(entry, ',');
        next = next ? (*next = '\0', next + 1) : entry + strlen(entry);
        while (*entry == ' ')
            entry++;
        index = resolve_entry(entry, candidates, ncandidates);
        if (index < 0 || is_visible(index))
            break;
        visible[nvisible++] = index;
    }
}

static const sim_device *device_at(CUdevice dev)
{
    return &sim_config_get()->devices[visible[dev]];
}

static CUresult check_device(CUdevice dev)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (dev < 0 || dev >= nvisible)
        return CUDA_ERROR_INVALID_DEVICE;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuInit(unsigned int Flags)
{
    const sim_config *c = sim_config_get();
    if (Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    sim_act(c->cu_init);
    if (c->cu_init.action == SIM_ERROR)
        return (CUresult)c->cu_init.code;
    if (!c->found)
        return CUDA_ERROR_NO_DEVICE;
    enumerate();
    if (nvisible == 0)
        return CUDA_ERROR_NO_DEVICE;
    initialized = 1;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = sim_config_get()->cuda_driver_version;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetCount(int *count)
{
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    *count = nvisible;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    CUresult r;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    r = check_device(ordinal);
    if (r == CUDA_SUCCESS)
        *device = ordinal;
    return r;
}

SIM_API CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r != CUDA_SUCCESS)
        return r;
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    strncpy(name, device_at(dev)->name, (size_t)len - 1);
    name[len - 1] = '\0';
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r != CUDA_SUCCESS)
        return r;
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    *major = device_at(dev)->cc_major;
    *minor = device_at(dev)->cc_minor;
    return CUDA_SUCCESS;
}

SIM_API CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r != CUDA_SUCCESS)
        return r;
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    switch (attrib) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *pi = device_at(dev)->cc_major; return CUDA_SUCCESS;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *pi = device_at(dev)->cc_minor; return CUDA_SUCCESS;
    }
    return CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CUresult r = check_device(dev);
    if (r != CUDA_SUCCESS)
        return r;
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = (size_t)device_at(dev)->memory_total;
    return CUDA_SUCCESS;
}

/* Each CUresult this stand-in can return, with the texts cuda.h documents. */
static const sim_error errors[] = {
    {CUDA_SUCCESS, "CUDA_SUCCESS", "no error"},
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_DEINITIALIZED, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
    {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"},
    {CUDA_ERROR_SYSTEM_NOT_READY, "CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"},
    {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
    {CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE", "forward compatibility was attempted on non supported HW"},
    {CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

/* An unknown code gives CUDA_ERROR_INVALID_VALUE and NULL, as the real calls do. */
static CUresult describe(CUresult error, const char **pStr, int want_name)
{
    const sim_error *e = sim_find_error(errors, sizeof errors / sizeof errors[0], error);
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    *pStr = e ? (want_name ? e->name : e->text) : NULL;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

SIM_API CUresult cuGetErrorName(CUresult error, const char **pStr) { return describe(error, pStr, 1); }
SIM_API CUresult cuGetErrorString(CUresult error, const char **pStr) { return describe(error, pStr, 0); }
