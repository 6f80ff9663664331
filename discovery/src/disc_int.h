/*
 * disc_int.h: discovery/'s internals shared between its files: the member
 * record, the messages and updates the state machine exchanges, the codec and
 * the packet sealing. Not visible outside discovery/.
 */
#ifndef DISC_INT_H
#define DISC_INT_H

#include "disc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wr/buf.h"
#include "wr/err.h"
#include "wr/log.h"
#include "wr/util.h"

#define DISC_WIRE_VERSION 1 /* first byte of every sealed packet and stream frame */
#define DISC_NONCE_LEN 24
#define DISC_TAG_LEN 16
#define DISC_SEAL_OVERHEAD (1 + DISC_NONCE_LEN + DISC_TAG_LEN)
#define DISC_MAX_PIGGY 32            /* updates in one packet */
#define DISC_PUSHPULL_MAX (1u << 22) /* 4 MiB: a whole state, plaintext */
#define DISC_CONFIRM_MAX 8           /* distinct confirmers remembered per suspicion */

/* ---- logging ---- */

/* Formats one line and hands it to cfg->log_cb, or to wr_log when unset. */
void disc__log(const struct disc_config *cfg, enum wr_log_level lvl, const char *ev,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The level is checked before the arguments are evaluated. */
#define DISC_LOG(cfg, lvl, ev, ...)                                                                \
    do {                                                                                           \
        if ((lvl) <= wr_log_level_cur)                                                             \
            disc__log((cfg), (lvl), (ev), __VA_ARGS__);                                            \
    } while (0)

/* ---- tunnel sets: immutable once built, shared by reference ---- */

struct disc_tunset {
    uint32_t refs;
    uint32_t n;
    struct disc_tunnel_entry e[]; /* sorted by (tunnel, agent), no duplicates */
};

/* A set of <n> zeroed entries with one reference; NULL on OOM or n too big. */
struct disc_tunset *disc__tunset_new(uint32_t n);
struct disc_tunset *disc__tunset_ref(struct disc_tunset *t);
void disc__tunset_unref(struct disc_tunset *t);
bool disc__tunset_eq(const struct disc_tunset *a, const struct disc_tunset *b);
/* Sorts the entries and checks ids, weights, duplicates and the encoded size.
 * 0 or WR_EUSAGE / WR_ETOOBIG. */
WR_MUST_CHECK int disc__tunset_normalize(struct disc_tunset *t);
/* True when sorted and valid (what a decoder must enforce). */
bool disc__tunset_is_valid(const struct disc_tunset *t);

/* ---- members ---- */

/* Lifeguard suspicion: the timeout starts at <max> and shrinks towards <min>
 * as independent confirmations arrive (disc__suspicion_timeout). */
struct disc_suspicion {
    uint64_t start;
    uint64_t min, max;
    uint64_t deadline;
    uint32_t k; /* confirmations expected */
    uint32_t n_confirm;
    char origin[WR_ID_MAX + 1]; /* who started it: not a confirmation */
    char confirmers[DISC_CONFIRM_MAX][WR_ID_MAX + 1];
};

struct disc_member {
    char id[WR_ID_MAX + 1];
    enum disc_member_state state; /* written only by disc_swim_set_state() */
    uint64_t inc;
    enum disc_role role;
    char addr[DISC_ADDR__COUNT][DISC_ADDR_MAX];
    uint64_t tver;
    struct disc_tunset *tunnels; /* a reference, or NULL for the empty set */
    uint64_t state_since;        /* ms of the last state change */
    struct disc_suspicion *susp; /* while SUSPECT */
    bool self;
};

/* ---- messages and updates (the codec's input and output) ---- */

enum disc_msg_type {
    DISC_MSG_NONE = 0,     /* a gossip-only packet: updates, no probe message */
    DISC_MSG_PING = 1,     /* seq, target id ("" = whoever listens there: joins) */
    DISC_MSG_ACK = 2,      /* seq */
    DISC_MSG_PING_REQ = 3, /* seq, target id, target gossip address */
    DISC_MSG_NACK = 4,     /* seq: the helper got no ack from the target */
    DISC_MSG__COUNT
};

struct disc_msg {
    enum disc_msg_type type;
    uint32_t seq;
    char target[WR_ID_MAX + 1];
    char target_addr[DISC_ADDR_MAX];
};

enum disc_upd_kind {
    DISC_UPD_ALIVE = 1,   /* node inc role addrs tver tunnels */
    DISC_UPD_SUSPECT = 2, /* node inc from */
    DISC_UPD_DEAD = 3,    /* node inc from */
    DISC_UPD_LEAVE = 4,   /* node inc */
    DISC_UPD__COUNT
};

struct disc_update {
    enum disc_upd_kind kind;
    char node[WR_ID_MAX + 1];
    uint64_t inc;
    char from[WR_ID_MAX + 1]; /* SUSPECT, DEAD: who says so */
    /* ALIVE only: */
    enum disc_role role;
    char addr[DISC_ADDR__COUNT][DISC_ADDR_MAX];
    uint64_t tver;
    struct disc_tunset *tunnels; /* a reference, or NULL for the empty set */
};

/* Releases what <u> references (its tunnel set) and zeroes it. */
void disc__update_clear(struct disc_update *u);
/* Copies <src> into <dst>, taking a new reference on the tunnel set. */
void disc__update_copy(struct disc_update *dst, const struct disc_update *src);

/* One UDP packet: at most one probe message plus piggybacked updates. */
struct disc_packet {
    struct disc_msg msg;
    uint32_t n_updates;
    struct disc_update upd[DISC_MAX_PIGGY];
};
void disc__packet_clear(struct disc_packet *p);

/* A full state for TCP push/pull: one record per known member, self included.
 * Records are updates whose kind encodes the state (ALIVE, SUSPECT, DEAD,
 * LEAVE for LEFT), all carrying the metadata. */
struct disc_state {
    bool join; /* sent by a joining member: the answer is a state too */
    uint32_t n;
    struct disc_update *rec; /* owned */
};
void disc__state_clear(struct disc_state *st);

/* ---- codec (disc_codec.c, the one file that includes msgpack.h) ---- */

/* Exact encoded sizes, so the machine fills packets without encoding twice. */
size_t disc__codec_packet_base_size(const struct disc_msg *m);
size_t disc__codec_update_size(const struct disc_update *u);
size_t disc__codec_tunset_size(const struct disc_tunset *t);
/* Appends the plaintext of <p> / <st> to <out>. 0, WR_ENOMEM or WR_ETOOBIG. */
WR_MUST_CHECK int disc__codec_packet_encode(const struct disc_packet *p, struct wr_buf *out);
WR_MUST_CHECK int disc__codec_state_encode(const struct disc_state *st, struct wr_buf *out);
/*
 * Strict decoders: exactly one object, no trailing bytes, exact types and
 * element counts, valid ids and addresses, bounded counts. On error <p>/<st>
 * is left empty, *why (when not NULL) names the reason (static string) and
 * the result is WR_EPROTO (or WR_ENOMEM).
 */
WR_MUST_CHECK int disc__codec_packet_decode(struct wr_slice in, struct disc_packet *p,
                                            const char **why);
WR_MUST_CHECK int disc__codec_state_decode(struct wr_slice in, struct disc_state *st,
                                           const char **why);

/* Address strings: printable ASCII without spaces, < DISC_ADDR_MAX, may be empty. */
bool disc__addr_is_valid(const char *s, size_t len);

/* ---- sealing (disc_keyring.c) ---- */

/* Appends version, random nonce and AEAD(primary key, <plain>) to <out>. */
WR_MUST_CHECK int disc__keyring_seal(const struct disc_keyring *kr, struct wr_slice plain,
                                     struct wr_buf *out);
/* Tries every key; on success appends the plaintext to <out>. WR_EVERSION for
 * an unknown version byte, WR_EAUTH when no key authenticates it (or it is
 * too short), WR_ENOMEM. Nothing is appended on error. */
WR_MUST_CHECK int disc__keyring_open(const struct disc_keyring *kr, struct wr_slice sealed,
                                     struct wr_buf *out);

/* ---- the membership state machine (disc_swim.c) ---- */

struct disc_swim;

struct disc_swim_ops {
    /* Send <p> to the gossip address <addr>. The packet is borrowed for the
     * call; the driver encodes and seals it before returning. */
    void (*send)(void *arg, const char *addr, const struct disc_packet *p);
    /* Open a push/pull exchange with <addr> (the driver does the TCP). */
    void (*pushpull)(void *arg, const char *addr);
    disc_event_cb event;
};

/* NULL on OOM or when <self> has an invalid id/address (cfg defaults applied to a copy). */
struct disc_swim *disc__swim_new(const struct disc_config *cfg, const struct disc_self *self,
                                 uint64_t now, const struct disc_swim_ops *ops, void *arg);
void disc__swim_free(struct disc_swim *s);

/* Runs every timer due at <now>. */
void disc__swim_tick(struct disc_swim *s, uint64_t now);
/* When tick must run next (absolute ms): at most one probe interval away while
 * probing; UINT64_MAX when nothing is due (after a leave, queue empty). */
uint64_t disc__swim_next_deadline(const struct disc_swim *s);
/* A decoded packet that arrived from <from> (its UDP source address). */
void disc__swim_on_packet(struct disc_swim *s, uint64_t now, const char *from,
                          const struct disc_packet *p);

/* Full state for push/pull. 0 or WR_ENOMEM. */
WR_MUST_CHECK int disc__swim_state_build(const struct disc_swim *s, bool join,
                                         struct disc_state *st);
/* Merges a remote state, as if each record had arrived as an update. */
void disc__swim_state_merge(struct disc_swim *s, uint64_t now, const struct disc_state *st);

/* Graceful leave: LEFT is broadcast and sent to every live member at once;
 * the machine then stops probing. Returns WR_ECLOSED when already left. */
int disc__swim_leave(struct disc_swim *s, uint64_t now);
bool disc__swim_has_left(const struct disc_swim *s);
/* Sends our alive update straight to <addr> (a join seed); the answer is
 * gossip. Push/pull is the reliable path; this one is the fast one. */
void disc__swim_announce(struct disc_swim *s, uint64_t now, const char *addr);
/* Replaces our tunnel set (copied), bumps its version and broadcasts it.
 * 0, WR_EUSAGE (invalid entry or duplicate), WR_ETOOBIG, WR_ENOMEM. */
WR_MUST_CHECK int disc__swim_set_tunnels(struct disc_swim *s, const struct disc_tunnel_entry *e,
                                         size_t n);

/* Queries. */
const struct disc_member *disc__swim_self(const struct disc_swim *s);
const struct disc_member *disc__swim_find(const struct disc_swim *s, const char *id);
size_t disc__swim_member_count(const struct disc_swim *s);
const struct disc_member *disc__swim_member_at(const struct disc_swim *s, size_t i);
void disc__swim_get_stats(const struct disc_swim *s, struct disc_stats *out);
/* For the driver's counters of what it sent and received. */
struct disc_stats *disc__swim_stats_mut(struct disc_swim *s);
size_t disc__swim_queue_len(const struct disc_swim *s);
/* Retransmissions each update gets with the current cluster size. */
uint32_t disc__swim_retransmit_limit(const struct disc_swim *s);
/* Suspicion timeout bounds (ms) for a cluster of <n> members. */
void disc__suspicion_bounds(const struct disc_config *c, size_t n, uint64_t *min, uint64_t *max);
/* Remaining timeout with <confirm> of <k> expected confirmations (Lifeguard). */
uint64_t disc__suspicion_timeout(uint64_t min, uint64_t max, uint32_t k, uint32_t confirm);

#endif
