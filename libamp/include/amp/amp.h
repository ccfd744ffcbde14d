/* libamp: the AMP (Asynchronous Messaging Protocol) library. */
#ifndef AMP_AMP_H
#define AMP_AMP_H

#include "amp/box.h"
#include "amp/client.h"
#include "amp/conn.h"
#include "amp/endpoint.h"
#include "amp/error.h"
#include "amp/export.h"
#include "amp/value.h"
#include "amp/session.h"
#include "amp/version.h"

#endif
