/* The one place the core asks the platform for randomness: keys for the
 * tables peers fill. Linux has getrandom(); elsewhere (a microcontroller,
 * another kernel) the embedder passes keys in and this reports that the
 * platform has no source. */
#include "amp/strmap.h"

#if defined(__linux__)
#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

/* getrandom() only blocks before the kernel's pool is first seeded, early
 * in boot. */
amp_err amp_random_key(uint8_t key[16])
{
    if (!key)
        return AMP_E_INVALID;
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom(key + got, 16 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return AMP_E_IO;
        got += (size_t)r;
    }
    return AMP_OK;
}
#else
amp_err amp_random_key(uint8_t key[16])
{
    (void)key;
    return AMP_E_INVALID;
}
#endif
