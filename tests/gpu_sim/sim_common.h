/* Shared by every stand-in library: export control and crash-on-load.
 *
 * Everything is compiled with -fvisibility=hidden; only SIM_API functions are exported.
 * SIM_CRASH_ON_LOAD (set by build.py): the library raises SIGSEGV from its constructor,
 * i.e. while the dynamic loader is still inside dlopen().
 */
#ifndef GPU_SIM_COMMON_H
#define GPU_SIM_COMMON_H

#include <stddef.h>

#define SIM_API __attribute__((visibility("default")))

/* A status code with the name and description the library's *GetErrorName / *GetErrorString give. */
typedef struct {
    int code;
    const char *name, *text;
} sim_error;

/* The entry of table (n entries) for code, or NULL. */
static inline const sim_error *sim_find_error(const sim_error *table, size_t n, int code)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (table[i].code == code)
            return &table[i];
    return NULL;
}

#ifdef SIM_CRASH_ON_LOAD
#include <signal.h>
__attribute__((constructor)) static void sim_crash_on_load(void)
{
    raise(SIGSEGV);
}
#endif

#endif
