/* What the vector runner needs from the board: core objects whose memory
 * comes from the device's arena, and how much of it is in use. */
#ifndef AMP_DEVICE_PLATFORM_H
#define AMP_DEVICE_PLATFORM_H

#include <stddef.h>

#include "amp/box.h"
#include "amp/session.h"

void device_init(void);
amp_err device_decoder_new(amp_decoder **out, const amp_limits *limits);
void device_buf_init(amp_buf *b);
amp_err device_session_new(amp_session **out, const amp_session_events *events,
                           void *user_data);
size_t device_mem_in_use(void);
size_t device_mem_high_water(void);
size_t device_mem_size(void);

#endif
