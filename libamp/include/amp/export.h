/* Symbol export macro: libamp and libamp-core are built with hidden
 * visibility; only declarations marked AMP_API are part of the public ABI.
 * Threads, lifetimes, clocks: nothing here (a macro). */
#ifndef AMP_EXPORT_H
#define AMP_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define AMP_API __attribute__((visibility("default")))
#else
#define AMP_API
#endif

#endif
