/*
 * disc.h: the public interface of discovery/, gossip membership for warren
 * (SWIM with Lifeguard's suspicion refinements, piggybacked dissemination,
 * full-state push/pull, AEAD-sealed packets with a keyring).
 *
 * The pieces (docs/gossip.md):
 *  - struct disc_cluster: one gossip member on a libuv loop: a UDP socket
 *    for probes and gossip, a TCP listener and client for push/pull, timers
 *    from the state machine's deadlines, joins retried with backoff.
 *  - struct disc_keyring: the cluster's gossip keys (seal with the primary,
 *    open with any), changed at runtime.
 *  - inside (src/): the SWIM + Lifeguard state machine, pure code with no
 *    sockets and no clock, and the codec.
 *
 * Threads: every function is loop-thread only (one thread owns an instance).
 * Members returned by the accessors are borrowed: valid until control
 * returns to the loop (a member may be reaped on the next timer), and inside
 * an event callback for the duration of the call. Event callbacks may call
 * any disc_cluster_* function, disc_cluster_close included.
 */
#ifndef DISC_H
#define DISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "wr/buf.h"
#include "wr/err.h"
#include "wr/log.h"
#include "wr/util.h"

#define DISC_EXPORT __attribute__((visibility("default")))

#define DISC_ADDR_MAX 64            /* address strings, NUL included */
#define DISC_MAX_MEMBERS_LIMIT 4096 /* hard ceiling of disc_config.max_members */
#define DISC_MAX_TUNNEL_ENTRIES 32  /* (tunnel, agent) pairs one member may advertise */
#define DISC_TUNSET_MAX_BYTES 900   /* encoded tunnel set, so an alive update fits a packet */
#define DISC_KEY_LEN 32             /* gossip key length (XChaCha20-Poly1305) */
#define DISC_KEYRING_MAX 8          /* keys held at once */
#define DISC_PACKET_MIN 512         /* smallest disc_config.packet_max accepted */
#define DISC_PACKET_LIMIT 65000     /* largest disc_config.packet_max accepted */

/* The member lifecycle (docs/gossip.md has the diagram and the rules). */
enum disc_member_state {
    DISC_MEMBER_ST_ALIVE = 0, /* answers probes, or vouched for by a newer incarnation */
    DISC_MEMBER_ST_SUSPECT,   /* a probe failed; dead unless refuted before the timeout */
    DISC_MEMBER_ST_DEAD,      /* the suspicion timed out (or someone else declared it) */
    DISC_MEMBER_ST_LEFT,      /* the member said goodbye: a graceful leave, not a failure */
    DISC_MEMBER_ST__COUNT     /* must be last */
};
/* "ALIVE", "SUSPECT", "DEAD", "LEFT" ("?" when out of range). */
DISC_EXPORT const char *disc_member_state_str(enum disc_member_state s);

enum disc_role {
    DISC_ROLE_NODE = 0,     /* a proxy node: holds tunnels */
    DISC_ROLE_OBSERVER = 1, /* a full gossip member that holds no tunnels (warren-lb, tools) */
    DISC_ROLE__COUNT
};
DISC_EXPORT const char *disc_role_str(enum disc_role r);

enum disc_addr_kind {
    DISC_ADDR_GOSSIP = 0, /* UDP probes and gossip, TCP push/pull: "host:port" */
    DISC_ADDR_TUNNEL,     /* where agents dial */
    DISC_ADDR_PEER,       /* node-to-node peer links */
    DISC_ADDR_ADMIN,      /* admin API */
    DISC_ADDR_LISTEN,     /* the agents' listener, for balancers that learn backends
                             from gossip (warren-lb); TUNNEL is what agents may dial */
    DISC_ADDR__COUNT
};

/* One (tunnel, agent, weight) a member holds. Zero-initialised is valid (empty). */
struct disc_tunnel_entry {
    char tunnel[WR_ID_MAX + 1];
    char agent[WR_ID_MAX + 1];
    uint8_t weight; /* 1..255 */
};

/*
 * Where discovery/'s log lines go: <ev> is the event name, <kv> the rest of
 * the logfmt line ("member=n1 from=ALIVE to=SUSPECT"), peer values already
 * validated. Called only for levels enabled in wr_log_level_cur. When no
 * callback is set, lines go to common/'s logger (mod=disc).
 */
typedef void (*disc_log_cb)(void *arg, enum wr_log_level lvl, const char *ev, const char *kv);

/*
 * Timers and bounds. Zero-initialised is valid: disc_config_defaults()
 * replaces every zero field with its default (docs/gossip.md says why each
 * default was chosen). Times in milliseconds.
 */
struct disc_config {
    uint32_t probe_interval_ms;     /* 500: one member probed per interval */
    uint32_t probe_timeout_ms;      /* 200: direct ack wait before indirect probes */
    uint32_t indirect_checks;       /* 3: helpers asked to probe on our behalf (k) */
    uint32_t gossip_interval_ms;    /* 50: piggyback-only gossip round (only when updates wait) */
    uint32_t gossip_nodes;          /* 3: members per gossip round */
    uint32_t suspicion_mult;        /* 3: min timeout = mult * log10(max(1,n)) * probe_interval */
    uint32_t suspicion_max_mult;    /* 4: max timeout = max_mult * min timeout */
    uint32_t retransmit_mult;       /* 6: each update is sent mult * ceil(log10(n+1)) times */
    uint32_t gossip_to_dead_ms;     /* 30000: dead members still get gossip this long */
    uint32_t reconnect_interval_ms; /* 5000: push/pull with one random DEAD member, so a
                                      healed partition merges again (Serf's reconnect) */
    uint32_t reap_ms;               /* 60000: DEAD/LEFT members are forgotten after this */
    uint32_t pushpull_interval_ms;  /* 30000: full-state exchange with one random member */
    uint32_t awareness_max;         /* 8: Lifeguard local health multiplier ceiling */
    uint32_t max_members;           /* 512 */
    uint32_t max_broadcasts;        /* 256: queued updates; the most-sent is dropped first */
    uint32_t max_relays;            /* 64: ping-req relays in flight */
    uint32_t packet_max;            /* 1400: sealed UDP packet, header and tag included */
    uint64_t initial_incarnation;   /* 0; drivers pass wall-clock seconds so restarts win */
    disc_log_cb log_cb;             /* optional, see above */
    void *log_arg;
};
/* Fills the zero fields of <c> with defaults and clamps the bounds. */
DISC_EXPORT void disc_config_defaults(struct disc_config *c);

/* Who we are. Zero-initialised is valid except that <id> must be set. */
struct disc_self {
    char id[WR_ID_MAX + 1];
    enum disc_role role;
    char addr[DISC_ADDR__COUNT][DISC_ADDR_MAX];
};

struct disc_member;

DISC_EXPORT const char *disc_member_id(const struct disc_member *m);
DISC_EXPORT enum disc_member_state disc_member_get_state(const struct disc_member *m);
DISC_EXPORT uint64_t disc_member_incarnation(const struct disc_member *m);
DISC_EXPORT enum disc_role disc_member_role(const struct disc_member *m);
/* Never NULL; "" when unknown. */
DISC_EXPORT const char *disc_member_addr(const struct disc_member *m, enum disc_addr_kind k);
DISC_EXPORT uint64_t disc_member_tunnels_version(const struct disc_member *m);
DISC_EXPORT size_t disc_member_tunnel_count(const struct disc_member *m);
/* The <i>th entry, sorted by (tunnel, agent); NULL when out of range. */
DISC_EXPORT const struct disc_tunnel_entry *disc_member_tunnel_get(const struct disc_member *m,
                                                                   size_t i);
DISC_EXPORT bool disc_member_is_self(const struct disc_member *m);

enum disc_event_type {
    DISC_EV_JOIN = 0, /* a member we did not know appeared (state in <m>) */
    DISC_EV_STATE,    /* <m> changed state from <old> */
    DISC_EV_META,     /* <m>'s addresses, role or tunnel set changed */
    DISC_EV_LEAVE,    /* <m> left gracefully (also reported as DISC_EV_STATE first) */
    DISC_EV_REAP,     /* <m> is forgotten: the pointer dies after the callback */
    DISC_EV__COUNT
};
/* Called from inside tick/packet/merge calls, never from the call that
 * registered it. <m> is borrowed for the duration of the call. */
typedef void (*disc_event_cb)(void *arg, enum disc_event_type ev, const struct disc_member *m,
                              enum disc_member_state old);

struct disc_stats {
    uint64_t members[DISC_MEMBER_ST__COUNT]; /* current, self included */
    uint64_t probes;                         /* direct probes sent */
    uint64_t probe_failures;  /* probes that ended with neither direct nor indirect ack */
    uint64_t indirect_probes; /* ping-req sent */
    uint64_t relays;          /* ping-req served for others */
    uint64_t suspicions;      /* members we started suspecting */
    uint64_t confirmations;   /* independent suspicions that shortened a timeout */
    uint64_t refutations;     /* times we bumped our incarnation to refute */
    uint64_t msgs_in, msgs_out;
    uint64_t bytes_in, bytes_out;
    uint64_t decrypt_failures;  /* packets that failed authentication: dropped unparsed */
    uint64_t decode_failures;   /* authenticated but malformed */
    uint64_t queue_drops;       /* broadcasts dropped because the queue was full */
    uint64_t members_refused;   /* joins refused by max_members */
    uint64_t pushpulls;         /* push/pull exchanges completed, both directions */
    uint64_t pushpull_failures; /* connect, timeout, authentication or format failures */
    uint64_t send_drops;        /* UDP sends the kernel refused (buffer full) */
    uint32_t awareness;         /* Lifeguard local health score, 0 = healthy */
};

/* ---- keyring ---- */

struct disc_keyring;

/* A keyring whose primary is <key>. NULL only on OOM. */
DISC_EXPORT struct disc_keyring *disc_keyring_new(const uint8_t key[DISC_KEY_LEN]);
/* Wipes every key. */
DISC_EXPORT void disc_keyring_free(struct disc_keyring *kr);
/* Adds <key> (not primary). 0 if added or already there; WR_ELIMIT when full. */
WR_MUST_CHECK DISC_EXPORT int disc_keyring_install(struct disc_keyring *kr,
                                                   const uint8_t key[DISC_KEY_LEN]);
/* Makes an installed <key> the primary. 0 or WR_ENOMEMBER. */
WR_MUST_CHECK DISC_EXPORT int disc_keyring_use(struct disc_keyring *kr,
                                               const uint8_t key[DISC_KEY_LEN]);
/* Removes <key>. 0, WR_ENOMEMBER, or WR_EUSAGE for the primary. */
WR_MUST_CHECK DISC_EXPORT int disc_keyring_remove(struct disc_keyring *kr,
                                                  const uint8_t key[DISC_KEY_LEN]);
DISC_EXPORT size_t disc_keyring_count(const struct disc_keyring *kr);

/*
 * The keyring as text (the --cluster-key file): one key per line as base64
 * (url or standard alphabet, padding allowed), the first line the primary;
 * blank lines and lines starting with '#' are ignored.
 * parse: 0 and *out; WR_EPROTO (a line is not a 32-byte key: *bad_line is
 * its number, 1-based), WR_ELIMIT (more than DISC_KEYRING_MAX keys),
 * WR_EUSAGE (no key at all), WR_ENOMEM. Duplicate keys are kept once.
 * format: appends the text, primary first, to <out>; 0 or WR_ENOMEM.
 */
WR_MUST_CHECK DISC_EXPORT int disc_keyring_parse(const char *text, size_t len,
                                                 struct disc_keyring **out, size_t *bad_line);
WR_MUST_CHECK DISC_EXPORT int disc_keyring_format(const struct disc_keyring *kr,
                                                  struct wr_buf *out);
/* One key from base64 text (as in the file); 0 or WR_EPROTO. */
WR_MUST_CHECK DISC_EXPORT int disc_key_decode(const char *text, size_t len,
                                              uint8_t key[DISC_KEY_LEN]);
#define DISC_KEY_FP_LEN 17 /* 16 hex digits and a NUL */
/* A key's fingerprint: the first 8 bytes of its BLAKE2b hash in hex. Safe to
 * show and log; says nothing about the key. */
DISC_EXPORT void disc_key_fingerprint(const uint8_t key[DISC_KEY_LEN], char out[DISC_KEY_FP_LEN]);
/* Copies the <i>th key (0 is the primary) into <out>; false when out of range. */
DISC_EXPORT bool disc_keyring_get(const struct disc_keyring *kr, size_t i,
                                  uint8_t out[DISC_KEY_LEN]);

/* ---- the libuv driver ---- */

struct disc_cluster;

/* Zero-initialised is valid except for <self.id> and <bind>. */
struct disc_cluster_config {
    struct disc_config swim;
    /* Who we are. self.addr[DISC_ADDR_GOSSIP] is what others dial; when
     * empty, the bound address is advertised (fine on loopback, wrong behind
     * a wildcard bind: set it then). */
    struct disc_self self;
    const char *bind;       /* "host:port" for UDP and TCP (same port); port 0: ephemeral */
    disc_event_cb event_cb; /* optional */
    void *event_arg;
    uint32_t join_backoff_min_ms; /* 250: first retry of a failed join */
    uint32_t join_backoff_max_ms; /* 30000 */
    uint32_t tcp_timeout_ms;      /* 5000: a whole push/pull exchange */
    uint32_t max_tcp_conns;       /* 128: push/pull connections at once, both ways */
};

/*
 * Creates a member on <loop>; it takes ownership of <kr> (freed by close,
 * or here on failure). Binds the sockets and starts probing at once: a
 * member alone is a cluster of one until it joins or is joined.
 * Returns 0 and sets *out, or WR_EUSAGE (bad config), a bind error, WR_ENOMEM.
 */
WR_MUST_CHECK DISC_EXPORT int disc_cluster_start(uv_loop_t *loop,
                                                 const struct disc_cluster_config *cfg,
                                                 struct disc_keyring *kr,
                                                 struct disc_cluster **out);
/*
 * Joins through <addrs> (gossip addresses, "host:port", numeric): a UDP
 * announce and a TCP push/pull to each; retried with jittered exponential
 * backoff until one push/pull completes. Calling it again replaces the list.
 * 0, WR_EUSAGE (no or invalid address), WR_ECLOSED.
 */
WR_MUST_CHECK DISC_EXPORT int disc_cluster_join(struct disc_cluster *c, const char *const *addrs,
                                                size_t n);
/* True once a push/pull (ours or another member's) gave us the cluster's state;
 * without seeds, also once any member reached us. */
DISC_EXPORT bool disc_cluster_is_joined(const struct disc_cluster *c);
/* Graceful leave: LEFT is sent to every live member now (others see "left",
 * not "failed"). Close afterwards. 0 or WR_ECLOSED. */
DISC_EXPORT int disc_cluster_leave(struct disc_cluster *c);
typedef void (*disc_close_cb)(void *arg);
/* Closes the sockets and timers and frees <c> (and its keyring); <cb> runs
 * once, asynchronously, when everything is released. Idempotent: a second
 * call does nothing. Without a leave, others will find us dead. */
DISC_EXPORT void disc_cluster_close(struct disc_cluster *c, disc_close_cb cb, void *arg);

/* Our tunnel set (see disc_tunnel_entry); copied. 0, WR_EUSAGE, WR_ETOOBIG, WR_ENOMEM,
 * WR_ECLOSED. */
WR_MUST_CHECK DISC_EXPORT int disc_cluster_set_tunnels(struct disc_cluster *c,
                                                       const struct disc_tunnel_entry *e, size_t n);
/* The keyring, for disc_keyring_install/use/remove at runtime. */
DISC_EXPORT struct disc_keyring *disc_cluster_keyring(struct disc_cluster *c);
/* The bound gossip address ("127.0.0.1:40123"). */
DISC_EXPORT const char *disc_cluster_addr(const struct disc_cluster *c);
DISC_EXPORT const struct disc_member *disc_cluster_self(const struct disc_cluster *c);
DISC_EXPORT const struct disc_member *disc_cluster_find(const struct disc_cluster *c,
                                                        const char *id);
DISC_EXPORT size_t disc_cluster_member_count(const struct disc_cluster *c);
/* Members in no particular order, self included; NULL past the end. */
DISC_EXPORT const struct disc_member *disc_cluster_member_at(const struct disc_cluster *c,
                                                             size_t i);
DISC_EXPORT void disc_cluster_get_stats(const struct disc_cluster *c, struct disc_stats *out);

#endif
