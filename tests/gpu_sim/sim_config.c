/* Parser for the simulated machine's key=value file; see sim_config.h and README.md. */
#define _GNU_SOURCE
#include "sim_config.h"

#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sim_config config;
static int parsed;

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

static sim_behaviour parse_behaviour(const char *value)
{
    sim_behaviour b = {SIM_OK, 0};
    if (strcmp(value, "hang") == 0)
        b.action = SIM_HANG;
    else if (strcmp(value, "segv") == 0)
        b.action = SIM_SEGV;
    else if (strncmp(value, "error:", 6) == 0) {
        b.action = SIM_ERROR;
        b.code = atoi(value + 6);
    }
    return b;
}

/* "unsupported" -> SIM_UNSUPPORTED, else the number. */
static long long parse_optional(const char *value)
{
    return strcmp(value, "unsupported") == 0 ? SIM_UNSUPPORTED : strtoll(value, NULL, 0);
}

/* "pid:MiB,pid:MiB" */
static void parse_processes(sim_device *d, const char *value)
{
    const char *p = value;
    d->nprocesses = 0;
    while (*p && d->nprocesses < SIM_MAX_PROCESSES) {
        char *end;
        unsigned long pid = strtoul(p, &end, 10);
        unsigned long long mib = 0;
        if (*end == ':')
            mib = strtoull(end + 1, &end, 10);
        d->processes[d->nprocesses].pid = (unsigned int)pid;
        d->processes[d->nprocesses].used_bytes = mib << 20;
        d->nprocesses++;
        p = (*end == ',') ? end + 1 : end + strlen(end);
    }
}

static void set_device_key(sim_device *d, const char *key, const char *value)
{
    if (strcmp(key, "name") == 0)
        snprintf(d->name, sizeof d->name, "%s", value);
    else if (strcmp(key, "uuid") == 0)
        snprintf(d->uuid, sizeof d->uuid, "%s", value);
    else if (strcmp(key, "serial") == 0)
        snprintf(d->serial, sizeof d->serial, "%s", value);
    else if (strcmp(key, "pci_bus_id") == 0)
        snprintf(d->pci_bus_id, sizeof d->pci_bus_id, "%s", value);
    else if (strcmp(key, "pci_device_id") == 0)
        d->pci_device_id = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "pci_subsystem_id") == 0)
        d->pci_subsystem_id = (unsigned int)strtoul(value, NULL, 0);
    else if (strcmp(key, "cc") == 0)
        sscanf(value, "%d.%d", &d->cc_major, &d->cc_minor);
    else if (strcmp(key, "memory_total_mib") == 0)
        d->memory_total = strtoull(value, NULL, 10) << 20;
    else if (strcmp(key, "memory_used_mib") == 0)
        d->memory_used = strtoull(value, NULL, 10) << 20;
    else if (strcmp(key, "persistence") == 0)
        d->persistence = (int)parse_optional(value);
    else if (strcmp(key, "mig") == 0)
        d->mig_current = d->mig_pending = (int)parse_optional(value);
    else if (strcmp(key, "mig_pending") == 0)
        d->mig_pending = (int)parse_optional(value);
    else if (strcmp(key, "throttle_reasons") == 0)
        d->throttle_reasons = strtoull(value, NULL, 0);
    else if (strcmp(key, "ecc_errors") == 0)
        d->ecc_errors = parse_optional(value);
    else if (strcmp(key, "retired_pages") == 0)
        d->retired_pages = (int)parse_optional(value);
    else if (strcmp(key, "processes") == 0)
        parse_processes(d, value);
    else
        fprintf(stderr, "gpu_sim: unknown device key '%s'\n", key);
}

static void set_key(const char *key, const char *value)
{
    if (strcmp(key, "driver_version") == 0)
        snprintf(config.driver_version, sizeof config.driver_version, "%s", value);
    else if (strcmp(key, "cuda_driver_version") == 0)
        config.cuda_driver_version = atoi(value);
    else if (strcmp(key, "nvml_init") == 0)
        config.nvml_init = parse_behaviour(value);
    else if (strcmp(key, "cu_init") == 0)
        config.cu_init = parse_behaviour(value);
    else if (strncmp(key, "device.", 7) == 0) {
        char *field;
        long index = strtol(key + 7, &field, 10);
        if (*field != '.' || index < 0 || index >= SIM_MAX_DEVICES) {
            fprintf(stderr, "gpu_sim: bad device key '%s'\n", key);
            return;
        }
        if (index >= config.ndevices)
            config.ndevices = (int)index + 1;
        set_device_key(&config.devices[index], field + 1, value);
    } else
        fprintf(stderr, "gpu_sim: unknown key '%s'\n", key);
}

/* $GPU_SIM_CONFIG, else gpu_sim.conf in the library's directory or any directory above it. */
static FILE *open_config(void)
{
    const char *env = getenv("GPU_SIM_CONFIG");
    char dir[PATH_MAX];
    Dl_info info;

    if (env && *env)
        return fopen(env, "r");
    if (!dladdr((void *)sim_config_get, &info) || !info.dli_fname)
        return NULL;
    snprintf(dir, sizeof dir, "%s", info.dli_fname);
    for (;;) {
        char path[PATH_MAX + 16];
        FILE *f;
        char *slash = strrchr(dir, '/');
        if (!slash)
            return NULL;
        *slash = '\0';
        snprintf(path, sizeof path, "%s/gpu_sim.conf", dir);
        f = fopen(path, "r");
        if (f || dir[0] == '\0')
            return f;
    }
}

const sim_config *sim_config_get(void)
{
    FILE *f;
    char line[1024];
    int i;

    if (parsed)
        return &config;
    parsed = 1;
    for (i = 0; i < SIM_MAX_DEVICES; i++) {
        config.devices[i].persistence = 0;
        config.devices[i].mig_current = config.devices[i].mig_pending = SIM_UNSUPPORTED;
        config.devices[i].ecc_errors = SIM_UNSUPPORTED;
        config.devices[i].retired_pages = SIM_UNSUPPORTED;
    }
    f = open_config();
    if (!f) {
        fprintf(stderr, "gpu_sim: no gpu_sim.conf (set GPU_SIM_CONFIG); acting as a driver without its kernel module\n");
        return &config;
    }
    config.found = 1;
    while (fgets(line, sizeof line, f)) {
        char *eq, *key = trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (!eq) {
            fprintf(stderr, "gpu_sim: ignoring line without '=': %s\n", key);
            continue;
        }
        *eq = '\0';
        set_key(trim(key), trim(eq + 1));
    }
    fclose(f);
    return &config;
}

void sim_act(sim_behaviour b)
{
    if (b.action == SIM_HANG)
        for (;;)
            pause();
    if (b.action == SIM_SEGV)
        raise(SIGSEGV);
}
