/* Result codes shared by every libamp function.
 *
 * AMP_OK is success; AMP_AGAIN ("need more bytes", "nothing yet") is not an
 * error. Every error is negative. The numeric values are stable and listed in
 * spec/amp.md; they fall in ranges so that a caller can tell the class:
 *   -1 .. -99    usage and resource errors (bad argument, no memory, no space)
 *   -100 .. -199 protocol errors: the peer sent bytes AMP does not allow
 *   -200 .. -299 limit errors: legal AMP, but over a configured cap
 *   -300 .. -399 value errors: a typed value that does not parse or encode
 *   -400 .. -499 call outcomes: how a call ended other than with an answer
 *   -500 .. -599 transport errors: sockets, TLS, endpoints
 *
 * Threads, lifetimes, clocks: plain values and pure functions (part of
 * libamp-core); amp_strerror() and amp_errname() return static strings that
 * live forever and may be called from any thread.
 */
#ifndef AMP_ERROR_H
#define AMP_ERROR_H

#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum amp_err {
    AMP_OK = 0,
    AMP_AGAIN = 1, /* need more input / no event yet: not an error */

    AMP_E_INVALID = -1,    /* a NULL handle or an argument out of its domain */
    AMP_E_NOMEM = -2,      /* allocation failed */
    AMP_E_NOSPACE = -3,    /* a fixed caller buffer is too small */

    AMP_E_PROTOCOL = -100,      /* generic protocol violation */
    AMP_E_EMPTY_BOX = -101,     /* a box with no pairs (a key length of 0 first) */
    AMP_E_KEY_TOO_LONG = -102,  /* a key length over 255 */
    AMP_E_TRUNCATED = -103,     /* input ended inside a box or list element */
    AMP_E_NO_ROLE = -104,       /* none of _answer, _error, _command */
    AMP_E_BAD_ERROR_BOX = -105, /* _error without _error_code or _error_description */
    AMP_E_EMPTY_KEY = -106,     /* encoder: a key of 0 bytes */
    AMP_E_VALUE_TOO_LONG = -107,/* encoder: a value over 65535 bytes */
    AMP_E_UNKNOWN_TAG = -108,   /* an answer or error for no outstanding call */
    AMP_E_UNHANDLED_NO_ASK = -109, /* a call without _ask for a command nobody serves */
    AMP_E_TAG_TOO_LONG = -110,  /* an _ask longer than AMP_MAX_TAG_LEN */

    AMP_E_LIMIT = -200,         /* generic limit */
    AMP_E_TOO_MANY_KEYS = -201, /* more pairs in a box than amp_limits.max_keys */
    AMP_E_BOX_TOO_LARGE = -202, /* a box over amp_limits.max_box_bytes */
    AMP_E_TOO_DEEP = -203,      /* nesting over the allowed depth */

    AMP_E_BAD_VALUE = -300, /* a typed value whose bytes do not parse */
    AMP_E_RANGE = -301,     /* well formed, but outside the C type's range */
    AMP_E_UTF8 = -302,      /* invalid UTF-8 where UTF-8 is required */

    AMP_E_REMOTE = -400,       /* the peer answered the call with an error box */
    AMP_E_TIMEOUT = -401,      /* the call's deadline passed */
    AMP_E_CANCELLED = -402,    /* the call was cancelled locally */
    AMP_E_CLOSED = -403,       /* the connection is closed or was lost */
    AMP_E_BACKPRESSURE = -404, /* output over its hard cap: refused */
    AMP_E_DUPLICATE = -405,    /* already registered */

    AMP_E_IO = -500,       /* a socket error (errno is kept by the connection) */
    AMP_E_TLS = -501,      /* TLS setup, handshake or verification failed */
    AMP_E_ENDPOINT = -502, /* a malformed endpoint string */
    AMP_E_CONNECT = -503,  /* the connection could not be established */
    AMP_E_RESOLVE = -504   /* the host name does not resolve */
} amp_err;

/* A static, human-readable description of a code; never NULL. */
AMP_API const char *amp_strerror(int err);
/* The stable short name of a code ("key-too-long"), as used in spec/vectors. */
AMP_API const char *amp_errname(int err);

AMP_API int amp_err_is_protocol(int err);
AMP_API int amp_err_is_limit(int err);

#ifdef __cplusplus
}
#endif
#endif
