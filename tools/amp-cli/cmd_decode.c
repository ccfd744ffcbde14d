/* amp-cli decode: a raw AMP byte stream to JSON lines. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp/amp.h"
#include "cli.h"
#include "json_text.h"

static void decode_usage(FILE *out)
{
    fprintf(out,
            "usage: amp-cli decode [--stats] [--max-keys N] [--max-box-bytes N] [FILE]\n"
            "\n"
            "Read a raw AMP byte stream from FILE (standard input by default) and print\n"
            "one JSON object per box, keys in wire order (duplicates kept). Keys and\n"
            "values are JSON strings; a byte that is not part of valid UTF-8 is written\n"
            "as the lone surrogate \\udcXX (XX = the byte), which 'amp-cli encode' turns\n"
            "back into that byte.\n"
            "\n"
            "  --stats            print only {\"boxes\": N, \"bytes\": N}\n"
            "  --max-keys N       refuse boxes with more than N keys (default %u)\n"
            "  --max-box-bytes N  refuse boxes over N bytes (default %u)\n"
            "\n"
            "On a malformed stream the good boxes are printed, then the byte offset and\n"
            "the reason on standard error, and the exit status is 1.\n",
            (unsigned)AMP_DEFAULT_MAX_KEYS, (unsigned)AMP_DEFAULT_MAX_BOX_BYTES);
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v == 0)
        return -1;
    *out = (size_t)v;
    return 0;
}

int cmd_decode(int argc, char **argv)
{
    static const struct option opts[] = {
        {"stats", no_argument, 0, 's'},
        {"max-keys", required_argument, 0, 'k'},
        {"max-box-bytes", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    amp_limits lim;
    amp_limits_default(&lim);
    int stats = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': stats = 1; break;
        case 'k':
            if (parse_size(optarg, &lim.max_keys)) {
                fprintf(stderr, "amp-cli decode: --max-keys needs a positive integer\n");
                return CLI_USAGE;
            }
            break;
        case 'b':
            if (parse_size(optarg, &lim.max_box_bytes) || lim.max_box_bytes < 2) {
                fprintf(stderr, "amp-cli decode: --max-box-bytes needs an integer >= 2\n");
                return CLI_USAGE;
            }
            break;
        case 'h': decode_usage(stdout); return CLI_OK;
        default: decode_usage(stderr); return CLI_USAGE;
        }
    }
    if (argc - optind > 1) {
        decode_usage(stderr);
        return CLI_USAGE;
    }
    const char *path = optind < argc ? argv[optind] : "-";
    FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "amp-cli decode: %s: %s\n", path, strerror(errno));
        return CLI_IO;
    }
    amp_decoder *d;
    if (amp_decoder_new(&d, &lim) != AMP_OK) {
        fprintf(stderr, "amp-cli decode: out of memory\n");
        return CLI_IO;
    }
    static uint8_t block[1 << 16];
    unsigned long long boxes = 0;
    amp_err r = AMP_AGAIN;
    size_t got;
    while (r == AMP_AGAIN && (got = fread(block, 1, sizeof block, in)) > 0) {
        amp_decoder_feed(d, block, got);
        amp_box box;
        while ((r = amp_decoder_next(d, &box)) == AMP_OK) {
            boxes++;
            if (!stats) {
                json_write_box(stdout, &box);
                putchar('\n');
            }
        }
    }
    int status = CLI_OK;
    if (ferror(in)) {
        fprintf(stderr, "amp-cli decode: %s: read error\n", path);
        status = CLI_IO;
    } else {
        if (r == AMP_AGAIN)
            r = amp_decoder_finish(d);
        if (r != AMP_OK) {
            fprintf(stderr, "amp-cli decode: %s: offset %llu: %s (%s)\n", path,
                    (unsigned long long)amp_decoder_error_offset(d), amp_strerror(r),
                    amp_errname(r));
            status = CLI_BAD_INPUT;
        }
    }
    if (stats)
        printf("{\"boxes\": %llu, \"bytes\": %llu}\n", boxes,
               (unsigned long long)amp_decoder_offset(d));
    amp_decoder_free(d);
    if (in != stdin)
        fclose(in);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "amp-cli decode: write error\n");
        return CLI_IO;
    }
    return status;
}
