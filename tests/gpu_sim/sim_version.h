/* The version a toolkit stand-in reports, baked in at compile time by build.py, so two copies of
 * one soname in two directories can disagree as real ones do:
 *   SIM_VERSION                      what the library's own version call returns, in its real encoding
 *   SIM_VERSION_MAJOR/MINOR/PATCH    what *GetProperty(MAJOR_VERSION/MINOR_VERSION/PATCH_LEVEL) returns
 *   SIM_CUDART_VERSION               the CUDA runtime it was built for (cudnnGetCudartVersion, ...)
 */
#ifndef GPU_SIM_VERSION_H
#define GPU_SIM_VERSION_H

#if !defined(SIM_VERSION) || !defined(SIM_VERSION_MAJOR) || !defined(SIM_VERSION_MINOR) || \
    !defined(SIM_VERSION_PATCH) || !defined(SIM_CUDART_VERSION)
#error "build.py passes SIM_VERSION, SIM_VERSION_MAJOR/MINOR/PATCH and SIM_CUDART_VERSION"
#endif

/* library_types.h */
typedef enum libraryPropertyType_t { MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL } libraryPropertyType;

/* Stores SIM_VERSION in *version; 0, or -1 for a NULL pointer (each caller maps it to its status type). */
static inline int sim_store_version(int *version)
{
    if (!version)
        return -1;
    *version = SIM_VERSION;
    return 0;
}

/* Stores the version part a libraryPropertyType names; 0, or -1 for a NULL pointer or unknown type. */
static inline int sim_store_property(libraryPropertyType type, int *value)
{
    int parts[] = {SIM_VERSION_MAJOR, SIM_VERSION_MINOR, SIM_VERSION_PATCH};
    if (!value || type < MAJOR_VERSION || type > PATCH_LEVEL)
        return -1;
    *value = parts[type];
    return 0;
}

#endif
