/* The simulated machine (driver + GPUs) that libnvidia-ml.so.1 and libcuda.so.1 report.
 *
 * Read once per process from a key=value file: $GPU_SIM_CONFIG, else the first gpu_sim.conf
 * found walking up from the directory the library was loaded from (so a scenario tree works
 * even when a caller scrubs the environment). See README.md for the keys.
 */
#ifndef GPU_SIM_CONFIG_H
#define GPU_SIM_CONFIG_H

#define SIM_MAX_DEVICES 16
#define SIM_MAX_PROCESSES 8
#define SIM_UNSUPPORTED (-1)

typedef struct {
    unsigned int pid;
    unsigned long long used_bytes;
} sim_process;

typedef struct {
    char name[96];
    char uuid[96];
    char serial[32];          /* empty: NVML_ERROR_NOT_SUPPORTED (GeForce boards) */
    char pci_bus_id[32];      /* "00000000:3B:00.0" */
    unsigned int pci_device_id;
    unsigned int pci_subsystem_id;
    int cc_major, cc_minor;
    unsigned long long memory_total, memory_used;  /* bytes */
    int persistence;          /* 0/1 or SIM_UNSUPPORTED */
    int mig_current, mig_pending;  /* 0/1 or SIM_UNSUPPORTED */
    unsigned long long throttle_reasons;
    long long ecc_errors;     /* or SIM_UNSUPPORTED */
    int retired_pages;        /* or SIM_UNSUPPORTED */
    int nprocesses;
    sim_process processes[SIM_MAX_PROCESSES];
} sim_device;

typedef enum { SIM_OK, SIM_HANG, SIM_SEGV, SIM_ERROR } sim_action;

typedef struct {
    sim_action action;
    int code;                 /* the error code returned for SIM_ERROR */
} sim_behaviour;

typedef struct {
    int found;                /* 0: no config file, the driver acts as if its kernel module is absent */
    char driver_version[80];
    int cuda_driver_version;  /* 12000 for CUDA 12.0 */
    sim_behaviour nvml_init, cu_init;
    int ndevices;
    sim_device devices[SIM_MAX_DEVICES];
} sim_config;

/* The parsed configuration (parsed on first use, never NULL). */
const sim_config *sim_config_get(void);

/* Hangs forever or raises SIGSEGV as b says; returns for SIM_OK and SIM_ERROR. */
void sim_act(sim_behaviour b);

#endif
