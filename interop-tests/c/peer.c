/* The libamp side of the interop tests: serves and checks the same commands
 * as interop-tests/python/twisted_peer.py.
 *
 *   amp-interop-peer serve ENDPOINT [--unix PATH] [--cert C --key K]
 *   amp-interop-peer check ENDPOINT [--unix PATH] [--ca CA]
 *   amp-interop-peer vanish ENDPOINT N   (N slow calls; the server is killed)
 *   amp-interop-peer provide BROKER [--name N] [--policy P] [COMMAND...]
 *   amp-interop-peer subscribe BROKER PATTERN...
 *   amp-interop-peer load ENDPOINT N MAXMS  (N Delay calls at once; tally)
 * With --bus, check skips what needs a direct connection (calls without
 * _ask, which a broker treats as events, and fatal errors).
 */
#include <ev.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amp/amp.h"

static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return NULL;
}

/* ---- serving --------------------------------------------------------------- */

struct conn_state {
    int notified;
};

static const amp_pair *arg(const amp_box *b, const char *k)
{
    return amp_box_find_str(b, k);
}

static void answer1(amp_request *req, const char *key, const uint8_t *v, size_t n)
{
    amp_pair p = {(const uint8_t *)key, strlen(key), v, n};
    amp_request_answer(req, &p, 1);
}

static void answer_int(amp_request *req, const char *key, int64_t x)
{
    char t[AMP_INT_MAX_LEN];
    answer1(req, key, (uint8_t *)t, amp_int_format(x, t));
}

/* The integer arguments k1 and k2, or the UNKNOWN fatal error Twisted sends
 * for a missing or unparsable argument (then -1). */
static int two_ints(amp_request *req, const amp_box *b, const char *k1, int64_t *x,
                    const char *k2, int64_t *y)
{
    const amp_pair *a = arg(b, k1), *c = arg(b, k2);
    if (!a || !c || amp_int_parse(a->value, a->value_len, x) ||
        amp_int_parse(c->value, c->value_len, y)) {
        amp_request_error(req, "UNKNOWN", "Unknown Error", 1);
        return -1;
    }
    return 0;
}

static void sum(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    int64_t x, y;
    if (!two_ints(req, b, "a", &x, "b", &y))
        answer_int(req, "total", x + y);
}

/* Re-encode one scalar of `type` through libamp's parser and formatter. */
static int echo_scalar(const char *type, const uint8_t *p, size_t n, amp_buf *out)
{
    char t[64];
    if (!strcmp(type, "Integer")) {
        int64_t x;
        amp_err r = amp_int_parse(p, n, &x);
        if (r == AMP_E_RANGE)
            return amp_bigint_check(p, n) ? -1 : (int)amp_buf_append(out, p, n);
        return r ? -1 : (int)amp_buf_append(out, (uint8_t *)t, amp_int_format(x, t));
    }
    if (!strcmp(type, "String"))
        return (int)amp_buf_append(out, p, n);
    if (!strcmp(type, "Unicode"))
        return amp_utf8_check(p, n) ? -1 : (int)amp_buf_append(out, p, n);
    if (!strcmp(type, "Float")) {
        double d;
        return amp_float_parse(p, n, &d) ? -1
                                         : (int)amp_buf_append(out, (uint8_t *)t,
                                                               amp_float_format(d, t));
    }
    if (!strcmp(type, "Boolean")) {
        int b;
        if (amp_bool_parse(p, n, &b))
            return -1;
        return (int)amp_buf_append(out, (const uint8_t *)amp_bool_format(b),
                                   strlen(amp_bool_format(b)));
    }
    if (!strcmp(type, "Decimal")) {
        char *scratch = malloc(n + 1);
        amp_decimal d;
        int r = amp_decimal_parse(p, n, &d, scratch, n) || amp_decimal_format(&d, out) ? -1 : 0;
        free(scratch);
        return r;
    }
    if (!strcmp(type, "DateTime")) {
        amp_datetime dt;
        if (amp_datetime_parse(p, n, &dt) || amp_datetime_format(&dt, t))
            return -1;
        return (int)amp_buf_append(out, (uint8_t *)t, AMP_DATETIME_LEN);
    }
    if (!strcmp(type, "Structured"))
        return amp_structured_check(p, n) ? -1 : (int)amp_buf_append(out, p, n);
    return -1;
}

/* ListOf: `depth` more list levels above `type`. */
static int echo_list(const char *type, int depth, const uint8_t *p, size_t n, amp_buf *out)
{
    size_t pos = 0;
    const uint8_t *e;
    size_t en;
    amp_err r;
    while ((r = amp_list_next(p, n, &pos, &e, &en)) == AMP_OK) {
        amp_buf elem;
        amp_buf_init(&elem);
        int bad = depth > 1 ? echo_list(type, depth - 1, e, en, &elem)
                            : echo_scalar(type, e, en, &elem);
        if (!bad)
            bad = amp_list_append(out, elem.data, elem.len) != AMP_OK;
        amp_buf_free(&elem);
        if (bad)
            return -1;
    }
    return r == AMP_AGAIN ? 0 : -1;
}

/* AmpList(a: Integer, b: Unicode optional), keys written sorted. */
static int echo_amplist(const uint8_t *p, size_t n, amp_buf *out)
{
    amp_limits lim;
    amp_limits_default(&lim);
    lim.allow_empty_box = 1;
    amp_decoder *d;
    amp_decoder_new(&d, &lim);
    amp_decoder_feed(d, p, n);
    amp_box box;
    amp_err r;
    int bad = 0;
    while (!bad && (r = amp_decoder_next(d, &box)) == AMP_OK) {
        const amp_pair *a = amp_box_find_str(&box, "a"), *b = amp_box_find_str(&box, "b");
        amp_buf va;
        amp_buf_init(&va);
        bad = !a || echo_scalar("Integer", a->value, a->value_len, &va) ||
              amp_encode_pair(out, (const uint8_t *)"a", 1, va.data, va.len);
        if (!bad && b)
            bad = amp_utf8_check(b->value, b->value_len) ||
                  amp_encode_pair(out, (const uint8_t *)"b", 1, b->value, b->value_len);
        if (!bad)
            amp_encode_end(out);
        amp_buf_free(&va);
    }
    if (!bad)
        bad = amp_decoder_finish(d) != AMP_OK;
    amp_decoder_free(d);
    return bad ? -1 : 0;
}

static void echo(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    const char *type = ud;
    const amp_pair *v = arg(b, "value");
    amp_buf out;
    amp_buf_init(&out);
    int bad = !v;
    if (!bad) {
        if (!strcmp(type, "ListOfInteger"))
            bad = echo_list("Integer", 1, v->value, v->value_len, &out);
        else if (!strcmp(type, "ListOfListOfUnicode"))
            bad = echo_list("Unicode", 2, v->value, v->value_len, &out);
        else if (!strcmp(type, "AmpList"))
            bad = echo_amplist(v->value, v->value_len, &out);
        else
            bad = echo_scalar(type, v->value, v->value_len, &out);
    }
    if (bad)
        amp_request_error(req, "BAD_VALUE", "the value does not parse", 0);
    else
        answer1(req, "value", out.data ? out.data : (const uint8_t *)"", out.len);
    amp_buf_free(&out);
}

static void fail(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    amp_request_error(req, "OOPS", "it went wrong", 0);
}

static void die(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    amp_request_error(req, "FATAL", "bye", 1);
}

static void explode(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    amp_request_error(req, "UNKNOWN", "Unknown Error", 1);
}

struct delayed {
    ev_timer t;
    amp_request *req;
    int64_t n;
};

static void delay_fire(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct delayed *d = w->data;
    answer_int(d->req, "n", d->n);
    free(d);
}

static void delay(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    int64_t ms, n;
    if (two_ints(req, b, "ms", &ms, "n", &n))
        return;
    struct delayed *d = malloc(sizeof *d);
    d->req = req;
    d->n = n;
    ev_timer_init(&d->t, delay_fire, (double)ms / 1000.0, 0);
    d->t.data = d;
    ev_timer_start(EV_DEFAULT, &d->t);
}

static void notify(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    ((struct conn_state *)ud)->notified++;
    amp_request_answer(req, NULL, 0);
}

static void count(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    answer_int(req, "count", ((struct conn_state *)ud)->notified);
}

static void read_fd(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    amp_conn *c = ud;
    const amp_pair *f = arg(b, "fd");
    int64_t ord;
    int fd = -1;
    if (f && amp_descriptor_parse(f->value, f->value_len, &ord) == AMP_OK)
        fd = amp_conn_take_fd(c, ord);
    if (fd < 0) {
        amp_request_error(req, "NO_FD", "no descriptor with that ordinal", 0);
        return;
    }
    uint8_t buf[64];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    close(fd);
    answer1(req, "data", buf, n > 0 ? (size_t)n : 0);
}

static amp_tls_config serve_tls;
static int serve_tls_on;

static void on_closed(amp_conn *c, int reason, void *ud)
{
    free(ud);
}

static void on_accept(amp_listener *l, amp_conn *c, void *ud)
{
    amp_session *s = amp_conn_session(c);
    struct conn_state *st = calloc(1, sizeof *st);
    amp_conn_callbacks cb = {NULL, on_closed, NULL};
    amp_conn_set_callbacks(c, &cb, st);
    static const char *types[] = {"Integer", "String", "Unicode", "Float", "Boolean", "Decimal",
                                  "DateTime", "ListOfInteger", "ListOfListOfUnicode", "AmpList",
                                  "Structured"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "Echo%s", types[i]);
        amp_session_serve_str(s, name, echo, (void *)types[i]);
    }
    amp_session_serve_str(s, "Sum", sum, NULL);
    amp_session_serve_str(s, "Fail", fail, NULL);
    amp_session_serve_str(s, "Die", die, NULL);
    amp_session_serve_str(s, "Explode", explode, NULL);
    amp_session_serve_str(s, "Delay", delay, NULL);
    amp_session_serve_str(s, "Notify", notify, st);
    amp_session_serve_str(s, "Count", count, st);
    amp_session_serve_str(s, "ReadFd", read_fd, c);
    if (serve_tls_on && !amp_conn_is_tls(c))
        amp_conn_serve_start_tls(c, &serve_tls);
}

static int serve(const char *endpoint, int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = EV_DEFAULT;
    char err[512];
    if (opt(argc, argv, "--cert")) {
        serve_tls.cert = opt(argc, argv, "--cert");
        serve_tls.private_key = opt(argc, argv, "--key");
        serve_tls_on = 1;
    }
    /* ReadFd takes passed descriptors: opt in, with room for a few at once */
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_fds = 16;
    amp_listener *l, *u = NULL;
    if (amp_listen(loop, endpoint, &cfg, on_accept, NULL, &l, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (opt(argc, argv, "--unix")) {
        char ep[300];
        snprintf(ep, sizeof ep, "unix:%s", opt(argc, argv, "--unix"));
        if (amp_listen(loop, ep, &cfg, on_accept, NULL, &u, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    printf("port %d\n", amp_listener_port(l));
    fflush(stdout);
    ev_run(loop, 0);
    amp_listener_free(l);
    amp_listener_free(u);
    return 0;
}

/* ---- checking --------------------------------------------------------------- */

static int failed;

static void report(const char *name, int ok, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, ok || !detail ? "" : ": ",
           ok || !detail ? "" : detail);
    fflush(stdout);
    if (!ok)
        failed++;
}

static uint8_t *unhex(const char *h, size_t *n)
{
    *n = strlen(h) / 2;
    uint8_t *b = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) {
        unsigned x;
        sscanf(h + 2 * i, "%2x", &x);
        b[i] = (uint8_t)x;
    }
    return b;
}

/* Send `value` to Echo<type>; 1 if the same bytes come back. */
static int echo_same(amp_client *c, const char *type, const uint8_t *v, size_t n, char *why,
                     size_t wn)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "Echo%s", type);
    amp_pair p = {(const uint8_t *)"value", 5, v, n};
    amp_reply *rep = NULL;
    amp_err r = amp_client_call(c, cmd, &p, 1, 10, &rep);
    int ok = 0;
    if (r == AMP_OK) {
        const amp_pair *got = amp_box_find_str(&rep->box, "value");
        ok = got && got->value_len == n && !memcmp(got->value, v, n);
        if (!ok)
            snprintf(why, wn, "'%.*s' came back as '%.*s'", (int)(n > 40 ? 40 : n), v,
                     got ? (int)(got->value_len > 40 ? 40 : got->value_len) : 0,
                     got ? (const char *)got->value : "");
    } else {
        snprintf(why, wn, "'%.*s': %s %.*s", (int)(n > 40 ? 40 : n), v, amp_strerror(r),
                 rep && rep->error_description ? (int)rep->error_description->value_len : 0,
                 rep && rep->error_description ? (const char *)rep->error_description->value
                                               : "");
    }
    amp_reply_free(rep);
    return ok;
}

static void check_types(amp_client *c)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/types.json", AMP_VECTORS_DIR);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &je);
    json_t *types = json_object_get(root, "types");
    static const char *names[][2] = {
        {"Integer", "Integer"}, {"String", "String"},   {"Unicode", "Unicode"},
        {"Float", "Float"},     {"Boolean", "Boolean"}, {"Decimal", "Decimal"},
        {"DateTime", "DateTime"}, {"AmpList", "AmpList"}, {"Structured", "Structured"},
        {"ListOf", "ListOfInteger"},
    };
    for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
        size_t i, sent = 0;
        json_t *v;
        char why[256] = "";
        int ok = 1;
        json_array_foreach(json_object_get(json_object_get(types, names[t][0]), "encode"), i, v) {
            json_t *el = json_object_get(v, "element");
            if (el && (json_array_size(el) != 1 ||
                       strcmp(json_string_value(json_array_get(el, 0)), "Integer")))
                continue;
            size_t n;
            uint8_t *b = unhex(json_string_value(json_object_get(v, "hex")), &n);
            if (ok && !echo_same(c, names[t][1], b, n, why, sizeof why))
                ok = 0;
            free(b);
            sent++;
        }
        char name[128];
        snprintf(name, sizeof name, "Echo%s (%zu values)", names[t][1], sent);
        report(name, ok && sent, why);
    }
    /* ListOf(ListOf(Unicode)): [["a"], [], ["b", "\u20ac"]] built here */
    amp_buf outer, inner;
    amp_buf_init(&outer);
    amp_buf_init(&inner);
    amp_list_append(&inner, (const uint8_t *)"a", 1);
    amp_list_append(&outer, inner.data, inner.len);
    amp_list_append(&outer, NULL, 0);
    inner.len = 0;
    amp_list_append(&inner, (const uint8_t *)"b", 1);
    amp_list_append(&inner, (const uint8_t *)"\xe2\x82\xac", 3);
    amp_list_append(&outer, inner.data, inner.len);
    char why[256] = "";
    report("EchoListOfListOfUnicode", echo_same(c, "ListOfListOfUnicode", outer.data, outer.len,
                                                why, sizeof why), why);
    amp_buf_free(&outer);
    amp_buf_free(&inner);
    json_decref(root);
}

struct pipe_state {
    int count[256];
    int64_t got[256];
    int done, in_order;
    int64_t last;
};

static void on_delay(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct pipe_state *p = ud;
    const amp_pair *n = r->status == AMP_OK ? amp_box_find_str(r->box, "n") : NULL;
    int64_t x = -1;
    if (n)
        amp_int_parse(n->value, n->value_len, &x);
    if (x >= 0 && x < 256) {
        p->count[x]++;
        if (x < p->last)
            p->in_order = 0;
        p->last = x;
    }
    p->done++;
}

static int remote_code(amp_client *c, const char *cmd, const char *code)
{
    amp_reply *rep = NULL;
    amp_err r = amp_client_call(c, cmd, NULL, 0, 10, &rep);
    int ok = r == AMP_E_REMOTE && rep->error_code->value_len == strlen(code) &&
             !memcmp(rep->error_code->value, code, strlen(code));
    amp_reply_free(rep);
    return ok;
}

static int sum_is(amp_client *c, const char *a, const char *b, int64_t want)
{
    amp_pair args[2] = {{(const uint8_t *)"a", 1, (const uint8_t *)a, strlen(a)},
                        {(const uint8_t *)"b", 1, (const uint8_t *)b, strlen(b)}};
    amp_reply *rep = NULL;
    int64_t got = -1;
    if (amp_client_call(c, "Sum", args, 2, 10, &rep) == AMP_OK) {
        const amp_pair *t = amp_box_find_str(&rep->box, "total");
        if (t)
            amp_int_parse(t->value, t->value_len, &got);
    }
    amp_reply_free(rep);
    return got == want;
}

static int check(const char *endpoint, int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    amp_client *c;
    if (amp_client_connect(&c, endpoint, 10, err, sizeof err)) {
        report("connect", 0, err);
        return 1;
    }
    report("Sum", sum_is(c, "13", "81", 94), NULL);
    check_types(c);

    report("unknown command gives UNHANDLED", remote_code(c, "Nope", "UNHANDLED"), NULL);
    report("connection stays open after UNHANDLED", sum_is(c, "1", "2", 3), NULL);
    report("declared error", remote_code(c, "Fail", "OOPS"), NULL);
    report("connection stays open after a declared error", sum_is(c, "2", "2", 4), NULL);

    int bus = opt(argc, argv, "--bus") != NULL || (argc > 0 && !strcmp(argv[argc - 1], "--bus"));
    amp_conn *conn = amp_client_conn(c);
    amp_reply *rep = NULL;
    if (!bus) { /* through a broker, calls without _ask are events */
        amp_pair text = {(const uint8_t *)"text", 4, (const uint8_t *)"hi", 2};
        for (int i = 0; i < 3; i++)
            amp_conn_send(conn, "Notify", &text, 1);
        int64_t count = -1;
        if (amp_client_call(c, "Count", NULL, 0, 10, &rep) == AMP_OK) {
            const amp_pair *k = amp_box_find_str(&rep->box, "count");
            amp_int_parse(k->value, k->value_len, &count);
        }
        amp_reply_free(rep);
        report("calls without _ask run and get no answer", count == 3, NULL);
    }

    static struct pipe_state ps;
    memset(&ps, 0, sizeof ps);
    ps.in_order = 1;
    ps.last = -1;
    unsigned seed = 5;
    const int n = 200;
    for (int i = 0; i < n; i++) {
        char ms[8], num[8];
        snprintf(ms, sizeof ms, "%d", rand_r(&seed) % 60);
        snprintf(num, sizeof num, "%d", i);
        amp_pair a[2] = {{(const uint8_t *)"ms", 2, (const uint8_t *)ms, strlen(ms)},
                         {(const uint8_t *)"n", 1, (const uint8_t *)num, strlen(num)}};
        amp_conn_call(conn, "Delay", a, 2, 10, on_delay, &ps, NULL);
    }
    while (ps.done < n && amp_client_conn(c))
        amp_client_step(c), usleep(200);
    int each_once = 1;
    for (int i = 0; i < n; i++)
        each_once &= ps.count[i] == 1;
    report("200 pipelined calls answered out of order, each exactly once",
           each_once && !ps.in_order, NULL);

    if (bus) { /* the rest would close the provider's connection to the broker */
        amp_client_free(c);
        return failed ? 1 : 0;
    }
    report("fatal error", remote_code(c, "Die", "FATAL"), NULL);
    for (int i = 0; i < 500 && amp_client_conn(c); i++)
        amp_client_step(c), usleep(10000);
    report("connection closed after a fatal error", !amp_client_conn(c), NULL);
    amp_client_free(c);

    if (amp_client_connect(&c, endpoint, 10, err, sizeof err) == AMP_OK) {
        report("undeclared error gives UNKNOWN", remote_code(c, "Explode", "UNKNOWN"), NULL);
        amp_client_free(c);
    }

    if (opt(argc, argv, "--ca") && amp_client_connect(&c, endpoint, 10, err, sizeof err) == 0) {
        amp_tls_config tls;
        memset(&tls, 0, sizeof tls);
        tls.ca_file = opt(argc, argv, "--ca");
        tls.hostname = "localhost";
        amp_err r = amp_client_start_tls(c, &tls, 10);
        report("StartTLS", r == AMP_OK && amp_conn_is_tls(amp_client_conn(c)),
               amp_strerror(r));
        report("calls after StartTLS", sum_is(c, "40", "2", 42), NULL);
        amp_client_free(c);
    }

    if (opt(argc, argv, "--unix")) {
        char ep[300];
        snprintf(ep, sizeof ep, "unix:%s", opt(argc, argv, "--unix"));
        if (amp_client_connect(&c, ep, 10, err, sizeof err) == AMP_OK) {
            char path[] = "/tmp/amp-interop-fd-XXXXXX";
            int fd = mkstemp(path);
            if (write(fd, "descriptor payload", 18) != 18)
                report("temporary file", 0, NULL);
            int64_t ord = -1;
            amp_conn_send_fd(amp_client_conn(c), fd, &ord);
            close(fd);
            unlink(path);
            char o[AMP_INT_MAX_LEN];
            amp_pair a = {(const uint8_t *)"fd", 2, (uint8_t *)o, amp_int_format(ord, o)};
            rep = NULL;
            int ok = amp_client_call(c, "ReadFd", &a, 1, 10, &rep) == AMP_OK;
            const amp_pair *d = ok ? amp_box_find_str(&rep->box, "data") : NULL;
            report("Descriptor passed over a UNIX socket",
                   d && d->value_len == 18 && !memcmp(d->value, "descriptor payload", 18), NULL);
            amp_reply_free(rep);
            amp_client_free(c);
        } else {
            report("connect unix", 0, err);
        }
    }
    return failed ? 1 : 0;
}

/* ---- a peer that vanishes mid-call ----------------------------------------- */

static int vanish(const char *endpoint, int n)
{
    char err[512];
    amp_client *c;
    if (amp_client_connect(&c, endpoint, 10, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    static struct pipe_state ps;
    memset(&ps, 0, sizeof ps);
    int closed_status = 0;
    for (int i = 0; i < n && i < 256; i++) {
        char num[8];
        snprintf(num, sizeof num, "%d", i);
        amp_pair a[2] = {{(const uint8_t *)"ms", 2, (const uint8_t *)"60000", 5},
                         {(const uint8_t *)"n", 1, (const uint8_t *)num, strlen(num)}};
        amp_conn_call(amp_client_conn(c), "Delay", a, 2, 0, on_delay, &ps, NULL);
    }
    /* make sure the calls are on the wire, then tell the test to kill */
    for (int i = 0; i < 20; i++)
        amp_client_step(c), usleep(5000);
    printf("sent %d\n", n);
    fflush(stdout);
    while (amp_client_conn(c))
        amp_client_step(c), usleep(1000);
    for (int i = 0; i < 100; i++)
        amp_client_step(c);
    closed_status = ps.done;
    int answered = 0;
    for (int i = 0; i < 256; i++)
        answered += ps.count[i];
    printf("completed %d answered %d\n", closed_status, answered);
    amp_client_free(c);
    return closed_status == n && answered == 0 ? 0 : 1;
}

/* ---- bus peers -------------------------------------------------------------- */

static const char *provider_name = "c";

static void named_sum(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    int64_t x, y;
    if (two_ints(req, b, "a", &x, "b", &y))
        return;
    char t[AMP_INT_MAX_LEN];
    amp_pair p[2] = {{(const uint8_t *)"served_by", 9, (const uint8_t *)provider_name,
                      strlen(provider_name)},
                     {(const uint8_t *)"total", 5, (uint8_t *)t, amp_int_format(x + y, t)}};
    amp_request_answer(req, p, 2);
}

static void provider_gone(amp_conn *c, int reason, void *ud)
{
    ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static int registered;
static void on_registered(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    if (r->status != AMP_OK) {
        fprintf(stderr, "registration failed\n");
        exit(1);
    }
    if (++registered == *(int *)ud) {
        printf("ready\n");
        fflush(stdout);
    }
}

static void bus_ready(amp_conn *c, void *ud)
{
    *(int *)ud = 1;
    ev_break(EV_DEFAULT, EVBREAK_ONE);
}

static amp_conn *bus_connect(const char *endpoint, void *state)
{
    signal(SIGPIPE, SIG_IGN);
    amp_conn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    static int ready;
    cfg.callbacks.ready = bus_ready;
    cfg.callbacks.closed = provider_gone;
    cfg.user_data = &ready;
    amp_conn *c;
    char err[256];
    if (amp_connect(EV_DEFAULT, endpoint, &cfg, &c, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    while (!ready)
        ev_run(EV_DEFAULT, EVRUN_ONCE);
    (void)state;
    return c;
}

/* provide BROKER [--name N] [--policy P] [COMMAND...] */
static int provide(const char *endpoint, int argc, char **argv)
{
    amp_conn *c = bus_connect(endpoint, NULL);
    if (opt(argc, argv, "--name"))
        provider_name = opt(argc, argv, "--name");
    const char *policy = opt(argc, argv, "--policy");
    struct conn_state *st = calloc(1, sizeof *st);
    amp_session *s = amp_conn_session(c);
    amp_session_serve_str(s, "Sum", named_sum, NULL);
    amp_session_serve_str(s, "Delay", delay, NULL);
    amp_session_serve_str(s, "Fail", fail, NULL);
    amp_session_serve_str(s, "Notify", notify, st);
    static const char *types[] = {"Integer", "Float", "Decimal", "DateTime", "Unicode",
                                  "ListOfInteger", "AmpList", "Structured", "String", "Boolean",
                                  "ListOfListOfUnicode"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "Echo%s", types[i]);
        amp_session_serve_str(s, name, echo, (void *)types[i]);
    }
    static const char *defaults[] = {"Sum", "Delay", "Fail", "EchoInteger", "EchoFloat",
                                     "EchoDecimal", "EchoDateTime", "EchoUnicode",
                                     "EchoListOfInteger", "EchoAmpList", "EchoStructured",
                                     "EchoString", "EchoBoolean", "EchoListOfListOfUnicode"};
    const char *cmds[64];
    int n = 0;
    for (int i = 0; i < argc && n < 64; i++) {
        if (!strcmp(argv[i], "--name") || !strcmp(argv[i], "--policy")) {
            i++;
            continue;
        }
        cmds[n++] = argv[i];
    }
    if (!n)
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            cmds[n++] = defaults[i];
    static int want;
    want = n;
    for (int i = 0; i < n; i++) {
        amp_pair p[2] = {{(const uint8_t *)"command", 7, (const uint8_t *)cmds[i], strlen(cmds[i])},
                         {(const uint8_t *)"policy", 6, (const uint8_t *)(policy ? policy : ""),
                          policy ? strlen(policy) : 0}};
        amp_conn_call(c, "amp.Register", p, policy ? 2 : 1, 10, on_registered, &want, NULL);
    }
    ev_run(EV_DEFAULT, 0);
    return 0;
}

static void print_event(amp_session *s, amp_request *req, const amp_box *b, void *ud)
{
    printf("{");
    for (size_t i = 0; i < b->count; i++)
        printf("%s\"%.*s\":\"%.*s\"", i ? "," : "", (int)b->pairs[i].key_len,
               (const char *)b->pairs[i].key, (int)b->pairs[i].value_len,
               (const char *)b->pairs[i].value);
    printf("}\n");
    fflush(stdout);
    amp_request_answer(req, NULL, 0);
}

/* subscribe BROKER PATTERN... */
static int subscribe(const char *endpoint, int argc, char **argv)
{
    amp_conn *c = bus_connect(endpoint, NULL);
    amp_session_serve_fallback(amp_conn_session(c), print_event, NULL);
    static int want;
    want = argc;
    for (int i = 0; i < argc; i++) {
        amp_pair p = {(const uint8_t *)"pattern", 7, (const uint8_t *)argv[i], strlen(argv[i])};
        amp_conn_call(c, "amp.Subscribe", &p, 1, 10, on_registered, &want, NULL);
    }
    ev_run(EV_DEFAULT, 0);
    return 0;
}

struct load_state {
    int n, done, answered, errors;
    int *count;
};

static void on_load(amp_session *s, uint64_t id, const amp_result *r, void *ud)
{
    struct load_state *ls = ud;
    ls->done++;
    if (r->status == AMP_OK)
        ls->answered++;
    else
        ls->errors++;
    if (id < (uint64_t)ls->n + 1)
        ls->count[id]++;
}

/* load ENDPOINT N MAXMS: N Delay calls in flight at once; prints the tally */
static int load(const char *endpoint, int n, int maxms)
{
    char err[512];
    amp_client *c;
    if (amp_client_connect(&c, endpoint, 10, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct load_state ls = {n, 0, 0, 0, calloc((size_t)n + 2, sizeof(int))};
    unsigned seed = 11;
    for (int i = 0; i < n; i++) {
        char ms[16], num[16];
        snprintf(ms, sizeof ms, "%d", maxms ? rand_r(&seed) % maxms : 0);
        snprintf(num, sizeof num, "%d", i);
        amp_pair a[2] = {{(const uint8_t *)"ms", 2, (const uint8_t *)ms, strlen(ms)},
                         {(const uint8_t *)"n", 1, (const uint8_t *)num, strlen(num)}};
        amp_conn_call(amp_client_conn(c), "Delay", a, 2, 60, on_load, &ls, NULL);
    }
    for (int i = 0; i < 20; i++)
        amp_client_step(c), usleep(2000);
    printf("sent %d\n", n);
    fflush(stdout);
    for (int i = 0; i < 30000 && ls.done < n && amp_client_conn(c); i++)
        amp_client_step(c), usleep(1000);
    int once = 1;
    for (int i = 1; i <= n; i++)
        once &= ls.count[i] == 1;
    printf("completed %d answered %d errors %d each-once %d\n", ls.done, ls.answered, ls.errors,
           once);
    free(ls.count);
    amp_client_free(c);
    return ls.done == n && once ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "provide"))
        return provide(argv[2], argc - 3, argv + 3);
    if (argc >= 4 && !strcmp(argv[1], "subscribe"))
        return subscribe(argv[2], argc - 3, argv + 3);
    if (argc >= 5 && !strcmp(argv[1], "load"))
        return load(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc >= 3 && !strcmp(argv[1], "serve"))
        return serve(argv[2], argc - 3, argv + 3);
    if (argc >= 3 && !strcmp(argv[1], "check"))
        return check(argv[2], argc - 3, argv + 3);
    if (argc >= 4 && !strcmp(argv[1], "vanish"))
        return vanish(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: amp-interop-peer serve|check ENDPOINT [options] | vanish ENDPOINT N\n"
                    "       amp-interop-peer provide|subscribe BROKER ... | load ENDPOINT N MAXMS\n");
    return 2;
}
