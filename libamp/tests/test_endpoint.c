/* Endpoint strings: Twisted's syntax, and clear messages for bad ones. */
#include <criterion/criterion.h>
#include <string.h>

#include "amp/amp.h"

static amp_endpoint parse_ok(const char *s, int server)
{
    amp_endpoint ep;
    char err[256] = "";
    cr_assert_eq(amp_endpoint_parse(s, server, &ep, err, sizeof err), AMP_OK, "%s: %s", s, err);
    return ep;
}

static void parse_bad(const char *s, int server, const char *needle)
{
    amp_endpoint ep;
    char err[256] = "";
    cr_assert_eq(amp_endpoint_parse(s, server, &ep, err, sizeof err), AMP_E_ENDPOINT, "%s", s);
    cr_assert(strstr(err, needle) != NULL, "'%s' gave '%s', expected it to mention '%s'", s, err,
              needle);
}

Test(endpoint, servers)
{
    amp_endpoint ep = parse_ok("tcp:7000:interface=127.0.0.1", 1);
    cr_assert_eq(ep.kind, AMP_ENDPOINT_TCP);
    cr_assert_eq(ep.port, 7000);
    cr_assert_str_eq(ep.host, "127.0.0.1");
    cr_assert_eq(ep.backlog, 50);
    amp_endpoint_free(&ep);

    ep = parse_ok("tcp:port=0:backlog=5", 1);
    cr_assert_eq(ep.port, 0);
    cr_assert_eq(ep.backlog, 5);
    cr_assert_null(ep.host);
    amp_endpoint_free(&ep);

    ep = parse_ok("ssl:7443:privateKey=key.pem:certKey=cert.pem:caCerts=ca.pem:clientCert=required", 1);
    cr_assert_eq(ep.kind, AMP_ENDPOINT_SSL);
    cr_assert_str_eq(ep.tls.private_key, "key.pem");
    cr_assert_str_eq(ep.tls.cert, "cert.pem");
    cr_assert_eq(ep.tls.client_cert, AMP_CLIENT_CERT_REQUIRED);
    amp_endpoint_free(&ep);

    ep = parse_ok("ssl:7443:privateKey=both.pem", 1);
    cr_assert_str_eq(ep.tls.cert, "both.pem"); /* certKey defaults to privateKey */
    amp_endpoint_free(&ep);

    ep = parse_ok("unix:/tmp/x.sock", 1);
    cr_assert_eq(ep.kind, AMP_ENDPOINT_UNIX);
    cr_assert_str_eq(ep.path, "/tmp/x.sock");
    amp_endpoint_free(&ep);

    ep = parse_ok("unix:address=/tmp/a\\:b.sock:mode=0660", 1);
    cr_assert_str_eq(ep.path, "/tmp/a:b.sock");
    cr_assert_eq(ep.mode, 0660);
    amp_endpoint_free(&ep);
}

Test(endpoint, clients)
{
    amp_endpoint ep = parse_ok("tcp:example.org:7000", 0);
    cr_assert_str_eq(ep.host, "example.org");
    cr_assert_eq(ep.port, 7000);
    cr_assert_eq(ep.timeout, 30);
    amp_endpoint_free(&ep);

    parse_bad("tcp:host=::1:port=9", 0, "empty host"); /* colons must be escaped */

    ep = parse_ok("tcp:host=\\:\\:1:port=9:timeout=2.5", 0);
    cr_assert_str_eq(ep.host, "::1");
    cr_assert_eq(ep.timeout, 2.5);
    amp_endpoint_free(&ep);

    ep = parse_ok("ssl:host=h.example:port=443:caCerts=ca.pem", 0);
    cr_assert_str_eq(ep.tls.hostname, "h.example"); /* verified name defaults to the host */
    cr_assert_eq(ep.tls.insecure_skip_verify, 0);
    amp_endpoint_free(&ep);

    ep = parse_ok("unix:path=/run/amp.sock", 0);
    cr_assert_str_eq(ep.path, "/run/amp.sock");
    amp_endpoint_free(&ep);
}

Test(endpoint, clear_errors)
{
    parse_bad("tcp:99999", 1, "port '99999' is not a number from 0 to 65535");
    parse_bad("tcp:abc", 1, "port 'abc'");
    parse_bad("tcp:host", 0, "missing the port");
    parse_bad("tcp:port=7", 0, "missing the host");
    parse_bad("udp:7", 1, "unknown type 'udp'");
    parse_bad("7000", 1, "unknown type");
    parse_bad("tcp:7000:interfce=x", 1, "unknown option 'interfce'");
    parse_bad("ssl:7443", 1, "needs privateKey=FILE");
    parse_bad("ssl:7443:privateKey=k:clientCert=maybe", 1, "clientCert must be");
    parse_bad("ssl:7443:privateKey=k:clientCert=required", 1, "needs caCerts");
    parse_bad("unix:", 1, "empty socket path");
    parse_bad("unix:mode=0600", 1, "missing the socket path");
    parse_bad("tcp:h:1:timeout=-1", 0, "timeout");
    parse_bad("tcp:h:1:extra", 0, "unexpected field 'extra'");
    parse_bad("unix:/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock", 1, "longer than 107");
}
