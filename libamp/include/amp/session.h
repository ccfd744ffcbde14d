/* The conversation layer: calls, answers and errors over one AMP
 * connection, with no I/O and no clock.
 *
 * Bytes in: amp_session_feed(). Bytes out: amp_session_output() then
 * amp_session_consume(). Time: the caller passes its own monotonic "now"
 * (any unit, typically milliseconds) as call deadlines and to
 * amp_session_expire(); amp_session_next_deadline() says when to call it.
 *
 * Guarantee: every call accepted by amp_session_call() (it returned AMP_OK)
 * completes exactly once through its callback: with an answer, an error box,
 * AMP_E_TIMEOUT, AMP_E_CANCELLED or AMP_E_CLOSED. A call that
 * amp_session_call() refuses never runs its callback.
 *
 * Callbacks run from inside amp_session_feed(), amp_session_expire(),
 * amp_session_cancel() and amp_session_close(). Inside them the session may
 * be used freely, including amp_session_free(), which is then deferred until
 * the outermost of those functions returns.
 *
 * Threads, lifetimes, clocks
 *   - Threads: none inside. A session, its requests and everything they
 *     allocate belong to one thread at a time; no function here is safe to
 *     call concurrently on the same session (different sessions on
 *     different threads are independent: there is no global state). Every
 *     callback runs on the thread that called into the session.
 *   - Lifetimes: the caller owns the session until amp_session_free(). The
 *     config is copied by amp_session_new() (its allocator struct and hash
 *     key too); `events`, `usage` and the allocator's `ctx` are borrowed and
 *     must outlive the session (`ctx` also its last unanswered request). A
 *     request is owned by the session's user from its responder callback
 *     until it is answered (which frees it), and may outlive the session.
 *     Views (boxes, pairs, output) are valid as each function says.
 *   - user_data: a responder's user_data can come with a destroy-notify
 *     (amp_session_serve_full()), called exactly once when the responder is
 *     unserved or replaced, or the session is freed (after every other
 *     callback). Call callbacks' user_data is the caller's: each call
 *     completes exactly once, which is the moment to release it.
 *   - Clocks: none. Deadlines and `now` are values of the caller's own
 *     monotonic clock, in any unit, compared only with each other.
 *   - Memory: everything the session allocates (itself, its decoder, output
 *     buffers, call table, responder table, requests) comes from the
 *     config's allocator (NULL: malloc). */
#ifndef AMP_SESSION_H
#define AMP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "amp/box.h"
#include "amp/error.h"
#include "amp/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct amp_session amp_session;
typedef struct amp_request amp_request;

/* How a call ended, given to its callback. Views valid during the callback. */
typedef struct amp_result {
    int status;                         /* AMP_OK: answered; or an AMP_E_* */
    const amp_box *box;                 /* the answer or error box, or NULL */
    const amp_pair *error_code;         /* for AMP_E_REMOTE */
    const amp_pair *error_description;  /* for AMP_E_REMOTE */
} amp_result;

typedef void (*amp_result_cb)(amp_session *s, uint64_t call_id, const amp_result *r,
                              void *user_data);

/* A call arrived for a command this responder serves. `args` is the whole
 * box (valid during the callback). Answer now or later, exactly once, with
 * amp_request_answer() or amp_request_error() (each frees the request);
 * a call sent without _ask also gets a request, whose answer is dropped
 * without being sent. A request outlives its session and connection. */
typedef void (*amp_responder_cb)(amp_session *s, amp_request *req, const amp_box *args,
                                 void *user_data);

/* Events the session reports to whoever drives it (the transport). */
typedef struct amp_session_events {
    /* The peer broke the protocol; the session is now closed (every
     * outstanding call has completed with AMP_E_CLOSED). `err` says why.
     * Flush the output (it may hold a last error box), then close. */
    void (*protocol_error)(amp_session *s, int err, uint64_t offset, void *user_data);
    /* Output went above the high-water mark (over = 1) or back under the
     * low-water mark (over = 0). */
    void (*backpressure)(amp_session *s, int over, void *user_data);
    /* A fatal error was answered: flush the output, then close. */
    void (*close_after_flush)(amp_session *s, void *user_data);
    /* StartTLS (client side): the answer arrived. Start TLS now; every
     * output byte after this callback returns must go through TLS. */
    void (*start_tls)(amp_session *s, void *user_data);
    /* Output went from empty to non-empty: arrange for it to be written. */
    void (*output_ready)(amp_session *s, void *user_data);
    /* The session closed itself (never when its owner called
     * amp_session_close() or amp_session_free()); every outstanding call
     * has completed with AMP_E_CLOSED. Fires after protocol_error or
     * close_after_flush when those apply. `reason`:
     *  - a protocol or limit error code (protocol_error came first);
     *  - AMP_E_CLOSED: a fatal error was answered (close_after_flush came
     *    first): flush the output, then close;
     *  - AMP_E_BACKPRESSURE: an answer or error did not fit under the hard
     *    cap, so the peer is not reading: close without flushing;
     *  - AMP_E_TIMEOUT or AMP_E_CANCELLED: a StartTLS call ended before its
     *    answer, so whether the peer now speaks TLS is unknown;
     *  - AMP_E_NOMEM: output held back during StartTLS could not be queued.
     * The connection must end: a closed session ignores input and refuses
     * calls and answers. */
    void (*closed)(amp_session *s, int reason, void *user_data);
} amp_session_events;

/* All events unset; set those you handle. Use it (or zero the struct) so
 * that events added later stay unset in programs built before them. */
AMP_API void amp_session_events_init(amp_session_events *ev);

/* Bytes held by sessions that share one accounting (one thread): each
 * session adds the unsent output and the partial input box it holds and
 * removes them when they are released, closed or freed. */
typedef struct amp_usage {
    size_t output_bytes;  /* unsent output, and output held back for StartTLS */
    size_t input_bytes;   /* incomplete input boxes */
    size_t request_bytes; /* requests (incoming calls) not answered yet: their
                             tag, command and bookkeeping */
} amp_usage;

/* Zero totals, before any session shares it. */
AMP_API void amp_usage_init(amp_usage *u);

/* Longest _ask a session accepts: a longer one is a protocol error
 * (AMP_E_TAG_TOO_LONG). Twisted's tags are short counters; the tag of every
 * unanswered call is kept, so its size must be bounded. */
#define AMP_MAX_TAG_LEN 255

#define AMP_DEFAULT_OUTPUT_HIGH_WATER (1u << 20)
#define AMP_DEFAULT_OUTPUT_HARD_CAP (64u << 20)

/* Fill it with amp_session_config_init() (or zero it: zeroes mean the same
 * defaults), then set what you need; fields may be added at the end. */
typedef struct amp_session_config {
    amp_limits limits;          /* decoder caps (zeroes: defaults) */
    size_t output_high_water;   /* 0: 1 MiB */
    size_t output_hard_cap;     /* 0: 64 MiB; calls and answers beyond fail */
    const amp_session_events *events; /* may be NULL */
    void *user_data;            /* passed to the events */
    /* NULL: not accounted. Otherwise the session keeps its share of these
     * totals current: output_bytes counts its unsent output plus output held
     * back during StartTLS (until consumed, or the session is freed; held
     * output also until closed), input_bytes the incomplete box its decoder
     * holds (amp_session_input_pending(); until the box completes, or the
     * session is closed or freed). The amp_usage must outlive the session. */
    amp_usage *usage;
    /* Every allocation of the session goes through it (copied; see
     * amp/alloc.h). NULL: malloc/realloc/free. */
    const amp_allocator *allocator;
    /* 16 secret random bytes keying the responder table, which peers fill
     * with names of their choosing (copied). NULL: the platform's entropy
     * (getrandom() on Linux); on a platform without one it is required. */
    const uint8_t *hash_key;
} amp_session_config;

/* Defaults: limits from amp_limits_default(), the default water marks, no
 * events, no accounting, malloc, the platform's entropy. */
AMP_API void amp_session_config_init(amp_session_config *cfg);

/* `cfg` may be NULL for defaults. AMP_OK, AMP_E_NOMEM, AMP_E_INVALID (bad
 * limits, an allocator with a missing function, or no hash_key on a
 * platform without entropy) or AMP_E_IO: the kernel gave no random key. */
AMP_API amp_err amp_session_new(amp_session **out, const amp_session_config *cfg);
/* Frees the session. Outstanding calls complete with AMP_E_CLOSED first.
 * Unanswered requests stay valid: answering them later returns AMP_E_CLOSED
 * and frees them, so every request must still be answered exactly once.
 * Deferred when called from inside a callback of this session. */
AMP_API void amp_session_free(amp_session *s);

/* ---- Serving ---------------------------------------------------------- */
/* Serve `command` (bytes, case-sensitive). AMP_E_DUPLICATE if served. */
AMP_API amp_err amp_session_serve(amp_session *s, const uint8_t *command, size_t n,
                                  amp_responder_cb cb, void *user_data);
AMP_API amp_err amp_session_serve_str(amp_session *s, const char *command, amp_responder_cb cb,
                                      void *user_data);
/* The same with a destroy-notify for user_data (may be NULL): it runs
 * exactly once, when the command is unserved or the session is freed (from
 * inside amp_session_free(), or when a deferred free completes). It must not
 * call into this session. If this function fails (AMP_E_DUPLICATE,
 * AMP_E_NOMEM, AMP_E_INVALID) it never runs: user_data stays the caller's. */
AMP_API amp_err amp_session_serve_full(amp_session *s, const uint8_t *command, size_t n,
                                       amp_responder_cb cb, void *user_data,
                                       amp_destroy_cb destroy);
/* Stop serving (the responder's destroy-notify runs). AMP_E_INVALID if not
 * served. */
AMP_API amp_err amp_session_unserve(amp_session *s, const uint8_t *command, size_t n);
AMP_API amp_err amp_session_unserve_str(amp_session *s, const char *command);
/* The responder for commands nobody serves (NULL: answer UNHANDLED as
 * Twisted does, and close the connection for such a call without _ask).
 * Replaces the previous fallback, whose destroy-notify then runs. */
AMP_API void amp_session_serve_fallback(amp_session *s, amp_responder_cb cb, void *user_data);
AMP_API void amp_session_serve_fallback_full(amp_session *s, amp_responder_cb cb,
                                             void *user_data, amp_destroy_cb destroy);

/* The request's command and tag (NULL if it was sent without _ask). */
AMP_API const amp_pair *amp_request_command(const amp_request *req);
AMP_API int amp_request_wants_answer(const amp_request *req);
/* Answer with these pairs (reserved keys are added; do not pass _answer).
 * The request is freed in every case. AMP_OK, AMP_E_CLOSED (the connection
 * is gone: dropped), AMP_E_BACKPRESSURE (over the hard cap: the session then
 * closes itself), or an encoder error such as AMP_E_VALUE_TOO_LONG or
 * AMP_E_INVALID (nothing of the answer is written; the peer gets UNKNOWN /
 * Unknown Error instead). Every box is written whole or not at all. */
AMP_API amp_err amp_request_answer(amp_request *req, const amp_pair *pairs, size_t n);
/* Answer with an error. `fatal`: close the connection after it (Twisted's
 * fatalErrors). The request is freed. AMP_OK, AMP_E_CLOSED,
 * AMP_E_BACKPRESSURE (the session then closes itself), or
 * AMP_E_VALUE_TOO_LONG: the code or description does not fit in a value, and
 * the peer gets a bounded error instead (the description cut to 65,535
 * bytes ending in "... (N bytes)"; a code that long becomes UNKNOWN /
 * Unknown Error). */
AMP_API amp_err amp_request_error(amp_request *req, const char *code, const char *description,
                                  int fatal);
/* The same with byte strings (a relayed error keeps its exact bytes). */
AMP_API amp_err amp_request_error_bytes(amp_request *req, const uint8_t *code, size_t code_len,
                                        const uint8_t *description, size_t description_len,
                                        int fatal);

/* ---- Calling ---------------------------------------------------------- */
typedef struct amp_call_opts {
    int no_answer;     /* send without _ask: nothing comes back, the
                          callback never runs and the call id is 0 */
    int has_deadline;  /* nonzero: complete with AMP_E_TIMEOUT when
                          amp_session_expire() is given now >= deadline */
    uint64_t deadline;
} amp_call_opts;

/* A call that wants an answer and has no deadline (the same as passing NULL
 * opts); set fields after. */
AMP_API void amp_call_opts_init(amp_call_opts *opts);

/* Send a call. `args` must not contain reserved keys. On AMP_OK, *call_id
 * (may be NULL) identifies it for amp_session_cancel(). Errors (callback
 * never runs): AMP_E_CLOSED, AMP_E_BACKPRESSURE, encoder errors. */
AMP_API amp_err amp_session_call(amp_session *s, const uint8_t *command, size_t command_len,
                                 const amp_pair *args, size_t n, const amp_call_opts *opts,
                                 amp_result_cb cb, void *user_data, uint64_t *call_id);
AMP_API amp_err amp_session_call_str(amp_session *s, const char *command, const amp_pair *args,
                                     size_t n, const amp_call_opts *opts, amp_result_cb cb,
                                     void *user_data, uint64_t *call_id);
/* Complete a call now with AMP_E_CANCELLED and free it; its late answer is
 * dropped (amp_session_late_answers). AMP_E_INVALID if it is not
 * outstanding. Cancelling a StartTLS call closes the session. */
AMP_API amp_err amp_session_cancel(amp_session *s, uint64_t call_id);
/* Complete every call whose deadline is <= now with AMP_E_TIMEOUT. */
AMP_API void amp_session_expire(amp_session *s, uint64_t now);
/* The earliest deadline of an outstanding call; 0 if there is none. */
AMP_API int amp_session_next_deadline(const amp_session *s, uint64_t *deadline);
AMP_API size_t amp_session_outstanding(const amp_session *s);
/* Calls received on this session that have not been answered yet. */
AMP_API size_t amp_session_pending_requests(const amp_session *s);
/* Change the decoder caps (see amp_decoder_set_limits). */
AMP_API amp_err amp_session_set_limits(amp_session *s, const amp_limits *limits);
/* Answers and errors that arrived after their call timed out or was
 * cancelled, and were dropped. An ended call leaves no state behind: any
 * tag below the next one issued that is not in flight counts here (so does
 * a second answer to a call); a tag never issued is a protocol error. */
AMP_API uint64_t amp_session_late_answers(const amp_session *s);

/* StartTLS, client side: sends the StartTLS call; later calls are held back
 * until its answer, then the start_tls event fires and they are released.
 * `cb` gets the answer (or error, after which nothing is held back). */
AMP_API amp_err amp_session_start_tls(amp_session *s, amp_result_cb cb, void *user_data);

/* ---- Bytes ------------------------------------------------------------ */
/* Process received bytes: every complete box is dispatched before this
 * returns. AMP_OK, AMP_E_CLOSED (already closed), or the protocol/limit
 * error that closed the session. The bytes need not stay valid after. */
AMP_API amp_err amp_session_feed(amp_session *s, const uint8_t *p, size_t n);
/* Bytes waiting to be written (a view valid until the next session call). */
AMP_API void amp_session_output(const amp_session *s, const uint8_t **p, size_t *n);
/* `n` bytes of the output were written. */
AMP_API void amp_session_consume(amp_session *s, size_t n);
/* Bytes of an incomplete input box the decoder holds (0 when none, and
 * once the session is closed). */
AMP_API size_t amp_session_input_pending(const amp_session *s);
/* Bytes held for unanswered requests of this session (counted in
 * amp_usage.request_bytes). */
AMP_API size_t amp_session_request_bytes(const amp_session *s);
/* Total bytes ever queued for output: lets a transport mark a position,
 * for example where TLS must start. */
AMP_API uint64_t amp_session_output_total(const amp_session *s);

/* The connection is gone (or is being closed by us): every outstanding call
 * completes with `reason` (normally AMP_E_CLOSED); later calls fail with
 * AMP_E_CLOSED; input is ignored. Idempotent. */
AMP_API void amp_session_close(amp_session *s, int reason);
AMP_API int amp_session_is_closed(const amp_session *s);

/* Python's repr() of a bytes object (b'...'), as Twisted writes it in
 * "Unhandled Command: b'...'". Appends to `out`. */
AMP_API amp_err amp_bytes_repr(amp_buf *out, const uint8_t *p, size_t n);

/* The UNHANDLED description the session sends: Twisted's exact
 * "Unhandled Command: " + repr(name) for names up to AMP_UNHANDLED_NAME_MAX
 * bytes; a longer name is cut there and followed by "... (N bytes)", so the
 * description always fits in a value (at most 19 + 4 * 1024 + 3 + 30 bytes).
 * Appends to `out`; on error `out` is unchanged. */
#define AMP_UNHANDLED_NAME_MAX 1024
AMP_API amp_err amp_unhandled_description(amp_buf *out, const uint8_t *name, size_t n);

#ifdef __cplusplus
}
#endif
#endif
