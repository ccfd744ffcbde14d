/* The board side of the device images: one static arena handed to every
 * core object through amp_allocator, and the session's hash key.
 *
 * The key: a microcontroller has no getrandom(), so the core asks the
 * embedder for the 16 bytes that key its responder table. A real device
 * takes them from its hardware random number generator or a per-unit
 * secret; the emulated board has neither, and nothing here faces hostile
 * peers, so a fixed key stands in. */
#include "platform.h"


#include "arena.h"

#ifndef DEVICE_ARENA_BYTES
#define DEVICE_ARENA_BYTES (1024u * 1024u)
#endif

static _Alignas(8) uint8_t arena_memory[DEVICE_ARENA_BYTES];
static amp_arena arena;

static void *arena_alloc(void *ctx, size_t n)
{
    return amp_arena_alloc(ctx, n);
}

static void *arena_realloc(void *ctx, void *p, size_t n)
{
    return amp_arena_realloc(ctx, p, n);
}

static void arena_free(void *ctx, void *p)
{
    amp_arena_free(ctx, p);
}

static const amp_allocator allocator = {arena_alloc, arena_realloc, arena_free, &arena};

static const uint8_t hash_key[16] = {0x3a, 0x91, 0x5c, 0x07, 0xe2, 0x48, 0xbd, 0x16,
                                     0x6f, 0xc3, 0x20, 0x8e, 0x54, 0xa9, 0x1b, 0xf7};

void device_init(void)
{
    amp_arena_init(&arena, arena_memory, sizeof arena_memory);
}

amp_err device_decoder_new(amp_decoder **out, const amp_limits *limits)
{
    return amp_decoder_new_with(out, limits, &allocator);
}

void device_buf_init(amp_buf *b)
{
    amp_buf_init_with(b, &allocator);
}

amp_err device_session_new(amp_session **out, const amp_session_events *events,
                           void *user_data)
{
    amp_session_config cfg;
    amp_session_config_init(&cfg);
    cfg.events = events;
    cfg.user_data = user_data;
    cfg.allocator = &allocator;
    cfg.hash_key = hash_key;
    return amp_session_new(out, &cfg);
}

size_t device_mem_in_use(void)
{
    return arena.in_use;
}

size_t device_mem_high_water(void)
{
    return arena.high_water;
}

size_t device_mem_size(void)
{
    return arena.size;
}
