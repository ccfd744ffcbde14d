/* amp-cli encode: JSON lines to the exact AMP bytes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "json_text.h"

static void encode_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli encode [FILE]\n"
            "\n"
            "Read JSON lines from FILE (standard input by default), each one object\n"
            "whose keys and values are strings, as 'amp-cli decode' prints them, and\n"
            "write each as one AMP box, keys in the order given (duplicates kept).\n"
            "\\udc80..\\udcff stand for the raw bytes 0x80..0xff. Blank lines are\n"
            "skipped. A bad line stops the run with its line number on standard error\n"
            "and exit status 1; the boxes before it have been written.\n");
}

int cmd_encode(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            encode_usage(stdout);
            return CLI_OK;
        }
        encode_usage(stderr);
        return CLI_USAGE;
    }
    if (argc - optind > 1) {
        encode_usage(stderr);
        return CLI_USAGE;
    }
    const char *path = optind < argc ? argv[optind] : "-";
    FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "amp-cli encode: %s: %s\n", path, strerror(errno));
        return CLI_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long long lineno = 0;
    json_box jb = {0};
    amp_buf out;
    amp_buf_init(&out);
    int status = CLI_OK;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == len)
            continue;
        const char *why;
        size_t col;
        if (json_parse_box(line, len, &jb, &why, &col)) {
            fprintf(stderr, "amp-cli encode: %s: line %llu, column %zu: %s\n", path, lineno,
                    col + 1, why);
            status = CLI_BAD_INPUT;
            break;
        }
        out.len = 0;
        amp_err r = amp_encode_box(&out, jb.pairs, jb.count);
        if (r != AMP_OK) {
            fprintf(stderr, "amp-cli encode: %s: line %llu: %s (%s)\n", path, lineno,
                    amp_strerror(r), amp_errname(r));
            status = CLI_BAD_INPUT;
            break;
        }
        if (fwrite(out.data, 1, out.len, stdout) != out.len) {
            status = CLI_IO;
            break;
        }
    }
    if (status == CLI_OK && ferror(in)) {
        fprintf(stderr, "amp-cli encode: %s: read error\n", path);
        status = CLI_IO;
    }
    free(line);
    json_box_free(&jb);
    amp_buf_free(&out);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "amp-cli encode: write error\n");
        return CLI_IO;
    }
    return status;
}
