/* Stand-in for libnvidia-ml.so.1 (NVML): the subset nvidia-ml-py (pynvml) needs for a health report.
 * Signatures and struct layouts follow nvml.h; values come from the simulated machine (sim_config.h).
 * Like the real NVML it ignores CUDA_VISIBLE_DEVICES.
 */
#include "sim_common.h"
#include "sim_config.h"

#include <stdio.h>
#include <string.h>

typedef enum nvmlReturn_enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_ALREADY_INITIALIZED = 5,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_INSUFFICIENT_POWER = 8,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_IRQ_ISSUE = 11,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_CORRUPTED_INFOROM = 14,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_OPERATING_SYSTEM = 17,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_IN_USE = 19,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_NO_DATA = 21,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

typedef enum nvmlEnableState_enum { NVML_FEATURE_DISABLED = 0, NVML_FEATURE_ENABLED = 1 } nvmlEnableState_t;
typedef int nvmlMemoryErrorType_t;
typedef int nvmlEccCounterType_t;
typedef int nvmlPageRetirementCause_t;

typedef struct nvmlDevice_st {
    unsigned int index;
} *nvmlDevice_t;

typedef struct nvmlMemory_st {
    unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;

#define NVML_STRUCT_VERSION(data, ver) (unsigned int)(sizeof(nvml##data##_v##ver##_t) | ((ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

typedef struct nvmlProcessInfo_v1_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

/* v2 and v3 share this layout (nvml.h of CUDA 11.x/12.x and pynvml agree). */
typedef struct nvmlProcessInfo_st {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

typedef struct nvmlPciInfo_st {
    char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
} nvmlPciInfo_t;

#define NVML_VALUE_NOT_AVAILABLE_GI_CI 0xFFFFFFFFu
#define NVML_RM_VERSION_SUFFIX_MAX 80

static struct nvmlDevice_st handles[SIM_MAX_DEVICES];
static int init_count;

static nvmlReturn_t init(void)
{
    const sim_config *c = sim_config_get();
    sim_act(c->nvml_init);
    if (c->nvml_init.action == SIM_ERROR)
        return (nvmlReturn_t)c->nvml_init.code;
    if (!c->found)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    init_count++;
    return NVML_SUCCESS;
}

/* Resolves a handle to its device, or returns the error the real NVML gives for an uninitialised
 * library, an unknown handle or bad output arguments (args_ok false: a NULL pointer). */
static nvmlReturn_t lookup(nvmlDevice_t device, int args_ok, const sim_device **out)
{
    const sim_config *c = sim_config_get();
    if (!init_count)
        return NVML_ERROR_UNINITIALIZED;
    if (device < handles || device >= handles + c->ndevices || !args_ok)
        return NVML_ERROR_INVALID_ARGUMENT;
    *out = &c->devices[device->index];
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_string(char *buf, unsigned int length, const char *value)
{
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, value, strlen(value) + 1);
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlInit_v2(void) { return init(); }
SIM_API nvmlReturn_t nvmlInit(void) { return init(); }
SIM_API nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; return init(); }

SIM_API nvmlReturn_t nvmlShutdown(void)
{
    if (!init_count)
        return NVML_ERROR_UNINITIALIZED;
    init_count--;
    return NVML_SUCCESS;
}

SIM_API const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

SIM_API nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    if (!init_count)
        return NVML_ERROR_UNINITIALIZED;
    return copy_string(version, length, sim_config_get()->driver_version);
}

/* "<CUDA major>.<driver version>", e.g. "12.525.85.12". */
SIM_API nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    char value[NVML_RM_VERSION_SUFFIX_MAX + 16];
    const sim_config *c = sim_config_get();
    snprintf(value, sizeof value, "%d.%s", c->cuda_driver_version / 1000, c->driver_version);
    return copy_string(version, length, value);
}

SIM_API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    if (!cudaDriverVersion)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!init_count)
        return NVML_ERROR_UNINITIALIZED;
    *cudaDriverVersion = sim_config_get()->cuda_driver_version;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

SIM_API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    if (!deviceCount)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!init_count)
        return NVML_ERROR_UNINITIALIZED;
    *deviceCount = (unsigned int)sim_config_get()->ndevices;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) { return nvmlDeviceGetCount_v2(deviceCount); }

SIM_API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    if (!init_count)
        return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= (unsigned int)sim_config_get()->ndevices)
        return NVML_ERROR_INVALID_ARGUMENT;
    handles[index].index = index;
    *device = &handles[index];
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

SIM_API nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, index != NULL, &d);
    if (r == NVML_SUCCESS)
        *index = device->index;
    return r;
}

SIM_API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, 1, &d);
    return r != NVML_SUCCESS ? r : copy_string(name, length, d->name);
}

SIM_API nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, 1, &d);
    return r != NVML_SUCCESS ? r : copy_string(uuid, length, d->uuid);
}

SIM_API nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, 1, &d);
    if (r != NVML_SUCCESS)
        return r;
    return d->serial[0] ? copy_string(serial, length, d->serial) : NVML_ERROR_NOT_SUPPORTED;
}

SIM_API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, major != NULL && minor != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    *major = d->cc_major;
    *minor = d->cc_minor;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, memory != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    memory->total = d->memory_total;
    memory->used = d->memory_used;
    memory->free = d->memory_total - d->memory_used;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    nvmlMemory_t v1;
    nvmlReturn_t r = nvmlDeviceGetMemoryInfo(device, memory ? &v1 : NULL);
    if (r != NVML_SUCCESS)
        return r;
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = v1.total;
    memory->reserved = 0;
    memory->free = v1.free;
    memory->used = v1.used;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t *mode)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, mode != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    if (d->persistence == SIM_UNSUPPORTED)
        return NVML_ERROR_NOT_SUPPORTED;
    *mode = d->persistence ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, currentMode != NULL && pendingMode != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    if (d->mig_current == SIM_UNSUPPORTED)
        return NVML_ERROR_NOT_SUPPORTED;
    *currentMode = (unsigned int)d->mig_current;
    *pendingMode = (unsigned int)d->mig_pending;
    return NVML_SUCCESS;
}

/* The NVML two-call protocol: too small a buffer gets the count and NVML_ERROR_INSUFFICIENT_SIZE. */
static nvmlReturn_t running_processes(nvmlDevice_t device, unsigned int *infoCount, nvmlProcessInfo_t *v2,
                                      nvmlProcessInfo_v1_t *v1)
{
    const sim_device *d;
    int i;
    nvmlReturn_t r = lookup(device, infoCount != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    if (*infoCount < (unsigned int)d->nprocesses) {
        *infoCount = (unsigned int)d->nprocesses;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (d->nprocesses && !v1 && !v2)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (i = 0; i < d->nprocesses; i++) {
        if (v2) {
            v2[i].pid = d->processes[i].pid;
            v2[i].usedGpuMemory = d->processes[i].used_bytes;
            v2[i].gpuInstanceId = NVML_VALUE_NOT_AVAILABLE_GI_CI;
            v2[i].computeInstanceId = NVML_VALUE_NOT_AVAILABLE_GI_CI;
        } else {
            v1[i].pid = d->processes[i].pid;
            v1[i].usedGpuMemory = d->processes[i].used_bytes;
        }
    }
    *infoCount = (unsigned int)d->nprocesses;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                          nvmlProcessInfo_v1_t *infos)
{
    return running_processes(device, infoCount, NULL, infos);
}

SIM_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int *infoCount,
                                                             nvmlProcessInfo_t *infos)
{
    return running_processes(device, infoCount, infos, NULL);
}

SIM_API nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                             nvmlProcessInfo_t *infos)
{
    return running_processes(device, infoCount, infos, NULL);
}

SIM_API nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, reasons != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    *reasons = d->throttle_reasons;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long *reasons)
{
    return nvmlDeviceGetCurrentClocksEventReasons(device, reasons);
}

/* Reports retired_pages pages at made-up addresses (page i at 0x1000 * (i + 1)). */
SIM_API nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t device, nvmlPageRetirementCause_t cause,
                                               unsigned int *pageCount, unsigned long long *addresses)
{
    const sim_device *d;
    int i;
    nvmlReturn_t r = lookup(device, pageCount != NULL, &d);
    (void)cause;
    if (r != NVML_SUCCESS)
        return r;
    if (d->retired_pages == SIM_UNSUPPORTED)
        return NVML_ERROR_NOT_SUPPORTED;
    if (*pageCount < (unsigned int)d->retired_pages) {
        *pageCount = (unsigned int)d->retired_pages;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (i = 0; addresses && i < d->retired_pages; i++)
        addresses[i] = 0x1000ULL * (unsigned long long)(i + 1);
    *pageCount = (unsigned int)d->retired_pages;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                                 nvmlEccCounterType_t counterType, unsigned long long *eccCounts)
{
    const sim_device *d;
    nvmlReturn_t r = lookup(device, eccCounts != NULL, &d);
    (void)errorType;
    (void)counterType;
    if (r != NVML_SUCCESS)
        return r;
    if (d->ecc_errors == SIM_UNSUPPORTED)
        return NVML_ERROR_NOT_SUPPORTED;
    *eccCounts = (unsigned long long)d->ecc_errors;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    const sim_device *d;
    unsigned int domain = 0, bus = 0, dev = 0;
    nvmlReturn_t r = lookup(device, pci != NULL, &d);
    if (r != NVML_SUCCESS)
        return r;
    sscanf(d->pci_bus_id, "%x:%x:%x", &domain, &bus, &dev);
    memset(pci, 0, sizeof *pci);
    snprintf(pci->busId, sizeof pci->busId, "%s", d->pci_bus_id);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0", domain & 0xFFFFu, bus & 0xFFu,
             dev & 0xFFu);
    pci->domain = domain;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = d->pci_device_id;
    pci->pciSubSystemId = d->pci_subsystem_id;
    return NVML_SUCCESS;
}

SIM_API nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}
