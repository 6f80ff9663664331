/*
 * wr.h: the public interface of common/, the code that node, agent, lb and
 * tools share. common/ is a set of independent components, each declared in
 * its own file under wr/ so that each stays readable; this umbrella is the one
 * header other folders include.
 */
#ifndef WR_H
#define WR_H

#include "wr/err.h"
#include "wr/log.h"
#include "wr/buf.h"
#include "wr/util.h"
#include "wr/flags.h"
#include "wr/addr.h"
#include "wr/proxy.h"
#include "wr/crypto.h"
#include "wr/token.h"
#include "wr/wire.h"
#include "wr/conn.h"
#include "wr/cert.h"
#include "wr/mux.h"
#include "wr/relay.h"
#include "wr/splice.h"

#endif
