/*
 * wr/wire.h: control messages, msgpack maps carried in CONTROL frames (and the
 * small header of OPEN frames). Only wr_wire.c includes msgpack.h.
 * Bump WR_WIRE_VERSION if any payload changes incompatibly.
 *
 * Every map has key "type" (an enum wr_msg_type). Unknown keys are ignored
 * (forward compatibility); missing required keys, wrong types, oversized
 * strings or arrays are rejected with WR_EPROTO and a static reason in *why.
 * Also rejected: input over WR_CONTROL_MAX (WR_OPEN_HDR_MAX for OPEN), anything
 * but exactly one msgpack map (trailing bytes included), a known key given
 * twice, a non-string key, strings with NUL bytes.
 *
 * Keys (all required unless marked "opt"; ids are wr_id_is_valid()):
 *   HELLO     type=100 v:uint32 role:id(<=15) tunnel:id agent:id token:str(1..WR_TOKEN_MAX)
 *             weight:uint(1..255) svc:[id](<=WR_MAX_SERVICES, opt)
 *   WELCOME   type=101 v:uint32 node:id cluster:id ping_ms:uint32 ping_to_ms:uint32
 *             nodes:[{id:id addr:str(<=63, printable, no spaces, opt)}](<=WR_MAX_NODES)
 *   DISCOVERY type=104 nodes:[{id addr}] as in WELCOME
 *   ERROR     type=102 code:uint32 msg:str(<=WR_ERRMSG_MAX, opt)
 *   OPEN      type=200 svc:id client:str(<=63, printable, no spaces, opt) hop:uint(0..WR_HOP_MAX)
 *             tunnel:id(opt; required on node-to-node peer links)
 *   claims    (no type) tunnel:id iat:uint64 exp:uint64 maxw:uint(1..255) jti:bin(16)
 * Encoders always write every key of the table ("" and [] included), except
 * OPEN's tunnel, which is left out when empty (agents never get it).
 */
#ifndef WR_WIRE_H
#define WR_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "wr/buf.h"
#include "wr/err.h"
#include "wr/token.h"
#include "wr/util.h"

#define WR_WIRE_VERSION 1
#define WR_CONTROL_MAX 16384 /* largest CONTROL payload accepted */
#define WR_OPEN_HDR_MAX 1024 /* largest OPEN header accepted */
#define WR_MAX_SERVICES 64
#define WR_ERRMSG_MAX 256
#define WR_MAX_NODES 256 /* entries in one discovery list */
#define WR_HOP_MAX 4

/* Numbered by subsystem: 100 handshake/auth, 200 tunnel/stream, 300 gossip, 400 admin. */
enum wr_msg_type {
    WR_MSG_HELLO = 100,
    WR_MSG_WELCOME = 101,
    WR_MSG_ERROR = 102,
    WR_MSG_GOAWAY = 103,
    WR_MSG_DISCOVERY = 104,
    WR_MSG_OPEN = 200,
};

/* Roles in HELLO. */
#define WR_ROLE_AGENT "agent"

/* Error codes carried in ERROR messages and RST/GOAWAY frames. */
enum wr_proto_code {
    WR_CODE_OK = 0,
    WR_CODE_PROTOCOL = 1, /* malformed or out-of-order input */
    WR_CODE_AUTH = 2,     /* token rejected */
    WR_CODE_VERSION = 3,  /* unsupported version */
    WR_CODE_REFUSED = 4,  /* stream refused (limit, unknown service) */
    WR_CODE_FLOW = 5,     /* flow control window exceeded */
    WR_CODE_CONNECT = 6,  /* agent could not reach its service */
    WR_CODE_SHUTDOWN = 7, /* going away */
    WR_CODE_TIMEOUT = 8,  /* keepalive or handshake timeout */
    WR_CODE_CANCEL = 9,   /* the other end went away */
    WR_CODE_INTERNAL = 10,
    WR_CODE_TOO_LARGE = 11,
    WR_CODE_NO_ROUTE = 12,  /* peer link: the node has no live agent for the tunnel */
    WR_CODE_HOP_LIMIT = 13, /* peer link: hop count outside 1..WR_HOP_MAX-1 */
    WR_CODE__COUNT
};
const char *wr_proto_code_str(uint32_t code);

struct wr_msg_hello {
    uint32_t version;
    char role[16];
    char tunnel[WR_ID_MAX + 1];
    char agent_id[WR_ID_MAX + 1];
    char token[WR_TOKEN_MAX + 1];
    uint8_t weight; /* 1..255 */
    uint32_t n_services;
    char services[WR_MAX_SERVICES][WR_ID_MAX + 1];
};

struct wr_node_entry {
    char node_id[WR_ID_MAX + 1];
    char addr[64]; /* direct tunnel address "host:port", or "" */
};

struct wr_msg_welcome {
    uint32_t version;
    char node_id[WR_ID_MAX + 1];
    char cluster[WR_ID_MAX + 1];
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    uint32_t n_nodes;
    struct wr_node_entry nodes[WR_MAX_NODES];
};

/* DISCOVERY: the node list again, sent when it changes after WELCOME. */
struct wr_msg_discovery {
    uint32_t n_nodes;
    struct wr_node_entry nodes[WR_MAX_NODES];
};

struct wr_msg_error {
    uint32_t code; /* enum wr_proto_code */
    char message[WR_ERRMSG_MAX + 1];
};

struct wr_msg_open {
    char service[WR_ID_MAX + 1];
    char client_addr[64];       /* visitor's address, for logs; may be "" */
    uint8_t hop;                /* 0 from an entry point; peers add 1 (max WR_HOP_MAX) */
    char tunnel[WR_ID_MAX + 1]; /* "" toward agents; the tunnel id on peer links */
};

/* Reads only the "type" of a control map (any value in 0..INT32_MAX: rejecting an
 * unknown type is the caller's job). The whole input is still checked to be one
 * well-formed msgpack map of at most WR_CONTROL_MAX bytes. */
WR_MUST_CHECK int wr_msg_peek_type(struct wr_slice in, int *type, const char **why);

/* Encoders append to <out>; return 0, WR_ENOMEM, WR_EUSAGE for a field
 * that does not fit the limits above, or WR_ETOOBIG when the whole encoding
 * exceeds what the decoder accepts (a full WELCOME of 256 nodes with long ids
 * and addresses can: keep lists short). On error <out> is left as it was.
 * Decoders zero the struct first and again on error; <why> may be NULL. */
WR_MUST_CHECK int wr_msg_hello_encode(const struct wr_msg_hello *m, struct wr_buf *out);
WR_MUST_CHECK int wr_msg_hello_decode(struct wr_slice in, struct wr_msg_hello *m, const char **why);
WR_MUST_CHECK int wr_msg_welcome_encode(const struct wr_msg_welcome *m, struct wr_buf *out);
WR_MUST_CHECK int wr_msg_welcome_decode(struct wr_slice in, struct wr_msg_welcome *m,
                                        const char **why);
WR_MUST_CHECK int wr_msg_discovery_encode(const struct wr_msg_discovery *m, struct wr_buf *out);
WR_MUST_CHECK int wr_msg_discovery_decode(struct wr_slice in, struct wr_msg_discovery *m,
                                          const char **why);
WR_MUST_CHECK int wr_msg_error_encode(const struct wr_msg_error *m, struct wr_buf *out);
WR_MUST_CHECK int wr_msg_error_decode(struct wr_slice in, struct wr_msg_error *m, const char **why);
WR_MUST_CHECK int wr_msg_open_encode(const struct wr_msg_open *m, struct wr_buf *out);
WR_MUST_CHECK int wr_msg_open_decode(struct wr_slice in, struct wr_msg_open *m, const char **why);

/* Token claims codec, used by wr_token.c. */
WR_MUST_CHECK int wr_msg_claims_encode(const struct wr_token_claims *c, struct wr_buf *out);
WR_MUST_CHECK int wr_msg_claims_decode(struct wr_slice in, struct wr_token_claims *c,
                                       const char **why);

#endif
