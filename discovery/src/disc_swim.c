/*
 * disc_swim.c: the SWIM + Lifeguard membership state machine. Pure code: no
 * sockets and no clock; time comes in as <now> (ms), packets leave through
 * ops.send as structs (the driver encodes and seals them), timers are the
 * deadline the driver asks for. It owns the member table, the probe cycle,
 * suspicion, refutation, the broadcast queue and reaping; it does not own
 * bytes on the wire (disc_codec.c) nor keys (disc_keyring.c).
 */

/*
 * Incarnation rules (docs/gossip.md, "Ordering"): for a member X with
 * incarnation i and an update with incarnation j,
 *   alive(j)   applies when X is unknown, or j > i; with j == i it may only
 *              carry a newer tunnel version (tver) for an ALIVE/SUSPECT X;
 *   suspect(j) applies when X is ALIVE and j >= i; for a SUSPECT X it is a
 *              confirmation (Lifeguard) when it comes from a new member;
 *   dead(j)    applies when X is ALIVE or SUSPECT and j >= i;
 *   leave(j)   applies when X is not LEFT and j >= i (so DEAD -> LEFT);
 *   about ourselves, any suspect/dead/leave with j >= our incarnation, or an
 *   alive with j > ours, is refuted with incarnation j + 1; a suspect/dead/
 *   leave with j < ours is a stale view, answered by queueing our alive again.
 */
#include "disc_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wr/log.h"

#define DISC_ST_BIT(s) (1u << (s))

struct disc_bcast {
    struct disc_update u;
    uint32_t transmits;
    uint64_t order; /* insertion order: newer first among equals */
};

struct disc_probe {
    bool active;
    bool indirect_sent;
    uint32_t seq;
    char target[WR_ID_MAX + 1];
    uint64_t timeout_at; /* direct ack deadline, then ping-req */
    uint64_t end_at;     /* end of the probe interval: suspect if no ack */
    uint32_t expected_nacks, nacks;
};

struct disc_relay {
    uint32_t seq;        /* our ping to the target */
    uint32_t origin_seq; /* the requester's probe */
    char origin[DISC_ADDR_MAX];
    uint64_t deadline;
};

struct disc_swim {
    struct disc_config cfg;
    struct disc_swim_ops ops;
    void *arg;
    struct disc_member *self;
    struct disc_member **members; /* cfg.max_members slots; self included */
    size_t n_members;
    struct disc_member **probe_list; /* shuffled round-robin order, self excluded */
    size_t n_probe, probe_idx;
    struct disc_member **scratch; /* random picks */
    struct disc_probe probe;
    struct disc_relay *relays;
    size_t n_relays;
    struct disc_bcast *bq;
    size_t n_bq;
    uint64_t bq_order;
    uint32_t seq;
    uint64_t next_probe_at, next_gossip_at, next_pushpull_at, next_reconnect_at;
    bool left;
    struct disc_stats stats;
    struct disc_packet pkt; /* the outgoing packet being built */
};

/* ---- the one writer of member states ---- */

static const uint32_t disc_swim_allowed[DISC_MEMBER_ST__COUNT] = {
    [DISC_MEMBER_ST_ALIVE] = DISC_ST_BIT(DISC_MEMBER_ST_SUSPECT) |
                             DISC_ST_BIT(DISC_MEMBER_ST_DEAD) | DISC_ST_BIT(DISC_MEMBER_ST_LEFT),
    [DISC_MEMBER_ST_SUSPECT] = DISC_ST_BIT(DISC_MEMBER_ST_ALIVE) |
                               DISC_ST_BIT(DISC_MEMBER_ST_DEAD) | DISC_ST_BIT(DISC_MEMBER_ST_LEFT),
    [DISC_MEMBER_ST_DEAD] = DISC_ST_BIT(DISC_MEMBER_ST_ALIVE) | DISC_ST_BIT(DISC_MEMBER_ST_LEFT),
    [DISC_MEMBER_ST_LEFT] = DISC_ST_BIT(DISC_MEMBER_ST_ALIVE),
};

static void disc_swim_emit(struct disc_swim *s, enum disc_event_type ev,
                           const struct disc_member *m, enum disc_member_state old)
{
    if (s->ops.event != NULL && !m->self)
        s->ops.event(s->arg, ev, m, old);
}

static void disc_swim_set_state(struct disc_swim *s, struct disc_member *m,
                                enum disc_member_state to, uint64_t now, const char *reason)
{
    enum disc_member_state from = m->state;
    if (from == to)
        return;
    if (!(disc_swim_allowed[from] & DISC_ST_BIT(to))) {
        /* The callers check the rules first, so this is a bug, not peer
         * input: logged, and the member keeps its state. */
        DISC_LOG(&s->cfg, WR_LOG_ERROR, "member_state_refused", "member=%s from=%s to=%s reason=%s",
                 m->id, disc_member_state_str(from), disc_member_state_str(to), reason);
        return;
    }
    DISC_LOG(&s->cfg, WR_LOG_DEBUG, "member_state", "member=%s from=%s to=%s reason=%s inc=%llu",
             m->id, disc_member_state_str(from), disc_member_state_str(to), reason,
             (unsigned long long)m->inc);
    m->state = to;
    m->state_since = now;
    if (to != DISC_MEMBER_ST_SUSPECT)
        WR_FREE(m->susp);
    disc_swim_emit(s, DISC_EV_STATE, m, from);
    if (to == DISC_MEMBER_ST_LEFT)
        disc_swim_emit(s, DISC_EV_LEAVE, m, from);
}

/* ---- helpers ---- */

static bool disc_swim_is_live(const struct disc_member *m)
{
    return m->state == DISC_MEMBER_ST_ALIVE || m->state == DISC_MEMBER_ST_SUSPECT;
}

/* Members not known to be gone, self included: the "n" of every formula. */
static size_t disc_swim_live_count(const struct disc_swim *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++)
        n += disc_swim_is_live(s->members[i]);
    return n;
}

static struct disc_member *disc_swim_find_mut(const struct disc_swim *s, const char *id)
{
    for (size_t i = 0; i < s->n_members; i++)
        if (strcmp(s->members[i]->id, id) == 0)
            return s->members[i];
    return NULL;
}

static void disc_swim_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

uint32_t disc__swim_retransmit_limit(const struct disc_swim *s)
{
    double n = (double)disc_swim_live_count(s);
    return s->cfg.retransmit_mult * (uint32_t)ceil(log10(n + 1.0));
}

void disc__suspicion_bounds(const struct disc_config *c, size_t n, uint64_t *min, uint64_t *max)
{
    /* memberlist's suspicionTimeout(): the scale never drops below 1. */
    double scale = log10(n > 1 ? (double)n : 1.0);
    if (scale < 1.0)
        scale = 1.0;
    *min = (uint64_t)((double)c->suspicion_mult * scale * (double)c->probe_interval_ms);
    *max = *min * c->suspicion_max_mult;
}

uint64_t disc__suspicion_timeout(uint64_t min, uint64_t max, uint32_t k, uint32_t confirm)
{
    if (k == 0 || confirm >= k)
        return min;
    /* Lifeguard: max - (max - min) * log(c + 1) / log(k + 1), floored at min. */
    double frac = log((double)confirm + 1.0) / log((double)k + 1.0);
    double t = (double)max - frac * (double)(max - min);
    return t < (double)min ? min : (uint64_t)t;
}

/* ---- the broadcast queue ---- */

static void disc_swim_bq_remove(struct disc_swim *s, size_t i)
{
    disc__update_clear(&s->bq[i].u);
    s->bq[i] = s->bq[s->n_bq - 1];
    memset(&s->bq[s->n_bq - 1], 0, sizeof(s->bq[0]));
    s->n_bq--;
}

/* Queues <u> for piggybacking; a newer update about the same member replaces
 * the older one. When full, the most retransmitted entry makes room. */
static void disc_swim_queue(struct disc_swim *s, const struct disc_update *u)
{
    for (size_t i = 0; i < s->n_bq; i++) {
        if (strcmp(s->bq[i].u.node, u->node) == 0) {
            disc_swim_bq_remove(s, i);
            break;
        }
    }
    if (s->n_bq == s->cfg.max_broadcasts) {
        size_t worst = 0;
        for (size_t i = 1; i < s->n_bq; i++)
            if (s->bq[i].transmits > s->bq[worst].transmits ||
                (s->bq[i].transmits == s->bq[worst].transmits &&
                 s->bq[i].order < s->bq[worst].order))
                worst = i;
        disc_swim_bq_remove(s, worst);
        s->stats.queue_drops++;
    }
    struct disc_bcast *b = &s->bq[s->n_bq++];
    disc__update_copy(&b->u, u);
    b->transmits = 0;
    b->order = ++s->bq_order;
}

static int on_bcast_cmp(const void *pa, const void *pb)
{
    const struct disc_bcast *a = pa, *b = pb;
    if (a->transmits != b->transmits)
        return a->transmits < b->transmits ? -1 : 1;
    return a->order > b->order ? -1 : (a->order < b->order ? 1 : 0);
}

/* Adds the least-sent updates that fit to <p>; drops those sent enough. */
static void disc_swim_fill(struct disc_swim *s, struct disc_packet *p)
{
    size_t budget = s->cfg.packet_max - DISC_SEAL_OVERHEAD;
    size_t used = disc__codec_packet_base_size(&p->msg);
    uint32_t limit = disc__swim_retransmit_limit(s);
    for (uint32_t i = 0; i < p->n_updates; i++)
        used += disc__codec_update_size(&p->upd[i]);

    if (s->n_bq == 0 || used >= budget)
        return;
    qsort(s->bq, s->n_bq, sizeof(s->bq[0]), on_bcast_cmp);
    for (size_t i = 0; i < s->n_bq && p->n_updates < DISC_MAX_PIGGY; i++) {
        size_t sz = disc__codec_update_size(&s->bq[i].u);
        if (used + sz > budget)
            continue;
        used += sz;
        disc__update_copy(&p->upd[p->n_updates++], &s->bq[i].u);
        s->bq[i].transmits++;
    }
    for (size_t i = s->n_bq; i-- > 0;)
        if (s->bq[i].transmits >= limit)
            disc_swim_bq_remove(s, i);
}

static void disc_swim_send(struct disc_swim *s, const char *addr, const struct disc_msg *m,
                           bool piggyback)
{
    struct disc_packet *p = &s->pkt;
    disc__packet_clear(p);
    if (m != NULL)
        p->msg = *m;
    if (piggyback)
        disc_swim_fill(s, p);
    if (p->msg.type != DISC_MSG_NONE || p->n_updates > 0) {
        s->stats.msgs_out++;
        s->ops.send(s->arg, addr, p);
    }
    disc__packet_clear(p);
}

static void disc_swim_self_alive(const struct disc_swim *s, struct disc_update *u)
{
    memset(u, 0, sizeof(*u));
    u->kind = DISC_UPD_ALIVE;
    memcpy(u->node, s->self->id, sizeof(u->node));
    u->inc = s->self->inc;
    u->role = s->self->role;
    memcpy(u->addr, s->self->addr, sizeof(u->addr));
    u->tver = s->self->tver;
    u->tunnels = disc__tunset_ref(s->self->tunnels);
}

static void disc_swim_queue_simple(struct disc_swim *s, enum disc_upd_kind kind,
                                   const struct disc_member *m, const char *from)
{
    struct disc_update u;
    memset(&u, 0, sizeof(u));
    u.kind = kind;
    memcpy(u.node, m->id, sizeof(u.node));
    u.inc = m->inc;
    if (from != NULL)
        disc_swim_copy_str(u.from, sizeof(u.from), from);
    disc_swim_queue(s, &u);
}

/* Up to <k> random distinct live members (and recently dead ones when
 * <with_recent_dead>), never self nor <skip>, into s->scratch. */
static size_t disc_swim_pick(struct disc_swim *s, size_t k, const char *skip, uint64_t now,
                             bool with_recent_dead)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        struct disc_member *m = s->members[i];
        if (m->self || (skip != NULL && strcmp(m->id, skip) == 0))
            continue;
        bool ok = disc_swim_is_live(m);
        if (!ok && with_recent_dead && m->state == DISC_MEMBER_ST_DEAD &&
            now - m->state_since < s->cfg.gossip_to_dead_ms)
            ok = true;
        if (ok)
            s->scratch[n++] = m;
    }
    /* Partial Fisher-Yates: the first <k> slots become a uniform sample. */
    for (size_t i = 0; i < k && i < n; i++) {
        size_t j = i + wr_rand_below((uint32_t)(n - i));
        struct disc_member *t = s->scratch[i];
        s->scratch[i] = s->scratch[j];
        s->scratch[j] = t;
    }
    return k < n ? k : n;
}

/* ---- refutation and the rules about others ---- */

static void disc_swim_refute(struct disc_swim *s, uint64_t inc, const char *why)
{
    struct disc_update u;
    s->self->inc = inc + 1;
    s->stats.refutations++;
    /* Lifeguard: being suspected hints that we are the slow one. */
    if (s->stats.awareness < s->cfg.awareness_max)
        s->stats.awareness++;
    DISC_LOG(&s->cfg, WR_LOG_INFO, "refute", "why=%s inc=%llu", why,
             (unsigned long long)s->self->inc);
    disc_swim_self_alive(s, &u);
    disc_swim_queue(s, &u);
    disc__update_clear(&u);
}

/*
 * A suspect/dead/leave about us older than our incarnation: someone still
 * holds a view from before our refutation or restart. Our alive is queued
 * again (same incarnation) unless it already is, so it spreads anew.
 */
static void disc_swim_on_stale_self(struct disc_swim *s)
{
    for (size_t i = 0; i < s->n_bq; i++)
        if (strcmp(s->bq[i].u.node, s->self->id) == 0 && s->bq[i].u.kind == DISC_UPD_ALIVE)
            return;
    struct disc_update u;
    disc_swim_self_alive(s, &u);
    disc_swim_queue(s, &u);
    disc__update_clear(&u);
}

static void disc_swim_probe_list_add(struct disc_swim *s, struct disc_member *m)
{
    /* A random slot, so a newcomer is not always probed last (memberlist). */
    size_t at = wr_rand_below((uint32_t)(s->n_probe + 1));
    s->probe_list[s->n_probe++] = m;
    struct disc_member *t = s->probe_list[at];
    s->probe_list[at] = m;
    s->probe_list[s->n_probe - 1] = t;
}

static bool disc_swim_meta_eq(const struct disc_member *m, const struct disc_update *u)
{
    return m->role == u->role && memcmp(m->addr, u->addr, sizeof(m->addr)) == 0 &&
           m->tver == u->tver && disc__tunset_eq(m->tunnels, u->tunnels);
}

static void disc_swim_take_meta(struct disc_member *m, const struct disc_update *u)
{
    m->role = u->role;
    memcpy(m->addr, u->addr, sizeof(m->addr));
    m->tver = u->tver;
    struct disc_tunset *old = m->tunnels;
    m->tunnels = disc__tunset_ref(u->tunnels);
    disc__tunset_unref(old);
}

static void disc_swim_on_alive(struct disc_swim *s, uint64_t now, const struct disc_update *u)
{
    struct disc_member *m = disc_swim_find_mut(s, u->node);
    if (m != NULL && m->self) {
        if (!s->left && u->inc > m->inc)
            disc_swim_refute(s, u->inc, "alive_of_older_life");
        return;
    }
    if (m == NULL) {
        if (s->n_members >= s->cfg.max_members) {
            s->stats.members_refused++;
            return;
        }
        m = wr_xcalloc(1, sizeof(*m));
        memcpy(m->id, u->node, sizeof(m->id));
        m->state = DISC_MEMBER_ST_ALIVE;
        m->inc = u->inc;
        m->state_since = now;
        disc_swim_take_meta(m, u);
        s->members[s->n_members++] = m;
        disc_swim_probe_list_add(s, m);
        DISC_LOG(&s->cfg, WR_LOG_DEBUG, "member_join", "member=%s inc=%llu", m->id,
                 (unsigned long long)m->inc);
        disc_swim_emit(s, DISC_EV_JOIN, m, DISC_MEMBER_ST_ALIVE);
        disc_swim_queue(s, u);
        return;
    }
    if (u->inc > m->inc) {
        bool changed = !disc_swim_meta_eq(m, u);
        m->inc = u->inc;
        disc_swim_take_meta(m, u);
        disc_swim_set_state(s, m, DISC_MEMBER_ST_ALIVE, now, "alive");
        if (changed)
            disc_swim_emit(s, DISC_EV_META, m, m->state);
        disc_swim_queue(s, u);
    } else if (u->inc == m->inc && u->tver > m->tver && disc_swim_is_live(m)) {
        bool changed = !disc_swim_meta_eq(m, u);
        disc_swim_take_meta(m, u);
        if (changed)
            disc_swim_emit(s, DISC_EV_META, m, m->state);
        disc_swim_queue(s, u);
    }
}

static bool disc_swim_confirm(struct disc_suspicion *sp, const char *from)
{
    if (sp->n_confirm >= sp->k || sp->n_confirm >= DISC_CONFIRM_MAX || from[0] == '\0' ||
        strcmp(from, sp->origin) == 0)
        return false;
    for (uint32_t i = 0; i < sp->n_confirm; i++)
        if (strcmp(sp->confirmers[i], from) == 0)
            return false;
    disc_swim_copy_str(sp->confirmers[sp->n_confirm++], sizeof(sp->confirmers[0]), from);
    sp->deadline = sp->start + disc__suspicion_timeout(sp->min, sp->max, sp->k, sp->n_confirm);
    return true;
}

/* A suspect or dead claim about ourselves: refute it with a higher
 * incarnation, or, when it is older than what we hold, repair the sender's
 * stale view. Nothing while leaving. */
static void disc_swim_about_self(struct disc_swim *s, struct disc_member *self, uint64_t inc,
                                 const char *why)
{
    if (s->left)
        return;
    if (inc >= self->inc)
        disc_swim_refute(s, inc, why);
    else
        disc_swim_on_stale_self(s);
}

static void disc_swim_on_suspect(struct disc_swim *s, uint64_t now, const char *node, uint64_t inc,
                                 const char *from)
{
    struct disc_member *m = disc_swim_find_mut(s, node);
    if (m == NULL)
        return;
    if (m->self) {
        disc_swim_about_self(s, m, inc, "suspected");
        return;
    }
    if (inc < m->inc)
        return;
    if (m->state == DISC_MEMBER_ST_SUSPECT) {
        if (inc > m->inc)
            m->inc = inc;
        if (disc_swim_confirm(m->susp, from)) {
            s->stats.confirmations++;
            disc_swim_queue_simple(s, DISC_UPD_SUSPECT, m, from);
        }
        return;
    }
    if (m->state != DISC_MEMBER_ST_ALIVE)
        return;
    m->inc = inc;
    size_t n = disc_swim_live_count(s);
    struct disc_suspicion *sp = wr_xcalloc(1, sizeof(*sp));
    disc__suspicion_bounds(&s->cfg, n, &sp->min, &sp->max);
    /* memberlist: k = mult - 2 independent confirmations, none when the
     * cluster is too small to provide them. */
    sp->k = s->cfg.suspicion_mult > 2 ? s->cfg.suspicion_mult - 2 : 0;
    if (sp->k > DISC_CONFIRM_MAX)
        sp->k = DISC_CONFIRM_MAX;
    if (n < (size_t)sp->k + 2)
        sp->k = 0;
    sp->start = now;
    disc_swim_copy_str(sp->origin, sizeof(sp->origin), from);
    sp->deadline = now + disc__suspicion_timeout(sp->min, sp->max, sp->k, 0);
    m->susp = sp;
    disc_swim_set_state(s, m, DISC_MEMBER_ST_SUSPECT, now, "suspect");
    s->stats.suspicions++;
    disc_swim_queue_simple(s, DISC_UPD_SUSPECT, m, from);
}

static void disc_swim_on_dead(struct disc_swim *s, uint64_t now, const char *node, uint64_t inc,
                              const char *from)
{
    struct disc_member *m = disc_swim_find_mut(s, node);
    if (m == NULL)
        return;
    if (m->self) {
        disc_swim_about_self(s, m, inc, "declared_dead");
        return;
    }
    if (inc < m->inc || !disc_swim_is_live(m))
        return;
    m->inc = inc;
    disc_swim_set_state(s, m, DISC_MEMBER_ST_DEAD, now, "dead");
    disc_swim_queue_simple(s, DISC_UPD_DEAD, m, from);
}

static void disc_swim_on_leave(struct disc_swim *s, uint64_t now, const char *node, uint64_t inc)
{
    struct disc_member *m = disc_swim_find_mut(s, node);
    if (m == NULL)
        return;
    if (m->self) {
        if (!s->left && inc >= m->inc)
            disc_swim_refute(s, inc, "said_left");
        else if (!s->left)
            disc_swim_on_stale_self(s);
        return;
    }
    if (inc < m->inc || m->state == DISC_MEMBER_ST_LEFT)
        return;
    m->inc = inc;
    disc_swim_set_state(s, m, DISC_MEMBER_ST_LEFT, now, "leave");
    disc_swim_queue_simple(s, DISC_UPD_LEAVE, m, NULL);
}

static void disc_swim_apply(struct disc_swim *s, uint64_t now, const struct disc_update *u)
{
    switch (u->kind) {
    case DISC_UPD_ALIVE:
        disc_swim_on_alive(s, now, u);
        break;
    case DISC_UPD_SUSPECT:
        disc_swim_on_suspect(s, now, u->node, u->inc, u->from);
        break;
    case DISC_UPD_DEAD:
        disc_swim_on_dead(s, now, u->node, u->inc, u->from);
        break;
    case DISC_UPD_LEAVE:
        disc_swim_on_leave(s, now, u->node, u->inc);
        break;
    default:
        break; /* the codec only produces the kinds above */
    }
}

/* ---- probing ---- */

static uint64_t disc_swim_scaled(const struct disc_swim *s, uint32_t ms)
{
    /* Lifeguard local health: a node that misses acks slows down instead of
     * accusing others of its own slowness. */
    return (uint64_t)ms * (s->stats.awareness + 1);
}

static void disc_swim_probe_end(struct disc_swim *s, uint64_t now)
{
    struct disc_probe *pr = &s->probe;
    pr->active = false;
    s->stats.probe_failures++;
    if (pr->expected_nacks > 0 && pr->nacks < pr->expected_nacks &&
        s->stats.awareness < s->cfg.awareness_max)
        s->stats.awareness++;
    /* A failed probe of a member someone else already suspects is an
     * independent confirmation (Lifeguard): on_suspect counts it. */
    struct disc_member *m = disc_swim_find_mut(s, pr->target);
    if (m != NULL && disc_swim_is_live(m)) {
        DISC_LOG(&s->cfg, WR_LOG_DEBUG, "probe_failed", "member=%s nacks=%u/%u", m->id, pr->nacks,
                 pr->expected_nacks);
        disc_swim_on_suspect(s, now, m->id, m->inc, s->self->id);
    }
}

static void disc_swim_reap(struct disc_swim *s, uint64_t now)
{
    for (size_t i = s->n_members; i-- > 0;) {
        struct disc_member *m = s->members[i];
        if (m->self || disc_swim_is_live(m) || now - m->state_since < s->cfg.reap_ms)
            continue;
        DISC_LOG(&s->cfg, WR_LOG_DEBUG, "member_reap", "member=%s state=%s", m->id,
                 disc_member_state_str(m->state));
        disc_swim_emit(s, DISC_EV_REAP, m, m->state);
        for (size_t j = 0; j < s->n_probe; j++) {
            if (s->probe_list[j] == m) {
                memmove(&s->probe_list[j], &s->probe_list[j + 1],
                        (s->n_probe - j - 1) * sizeof(s->probe_list[0]));
                s->n_probe--;
                if (s->probe_idx > j)
                    s->probe_idx--;
                break;
            }
        }
        s->members[i] = s->members[--s->n_members];
        disc__tunset_unref(m->tunnels);
        WR_FREE(m->susp);
        free(m);
    }
}

static void disc_swim_shuffle(struct disc_swim *s)
{
    for (size_t i = s->n_probe; i > 1; i--) {
        size_t j = wr_rand_below((uint32_t)i);
        struct disc_member *t = s->probe_list[i - 1];
        s->probe_list[i - 1] = s->probe_list[j];
        s->probe_list[j] = t;
    }
    s->probe_idx = 0;
}

static void disc_swim_probe_start(struct disc_swim *s, uint64_t now)
{
    struct disc_member *target = NULL;
    for (size_t tries = 0; tries < s->n_probe && target == NULL; tries++) {
        if (s->probe_idx >= s->n_probe)
            disc_swim_shuffle(s);
        struct disc_member *m = s->probe_list[s->probe_idx++];
        if (disc_swim_is_live(m))
            target = m;
    }
    if (target == NULL)
        return;
    struct disc_probe *pr = &s->probe;
    memset(pr, 0, sizeof(*pr));
    pr->active = true;
    pr->seq = ++s->seq;
    memcpy(pr->target, target->id, sizeof(pr->target));
    pr->timeout_at = now + disc_swim_scaled(s, s->cfg.probe_timeout_ms);
    pr->end_at = s->next_probe_at;
    struct disc_msg msg = {.type = DISC_MSG_PING, .seq = pr->seq};
    memcpy(msg.target, target->id, sizeof(msg.target));
    s->stats.probes++;
    disc_swim_send(s, target->addr[DISC_ADDR_GOSSIP], &msg, true);
}

static void disc_swim_probe_indirect(struct disc_swim *s)
{
    struct disc_probe *pr = &s->probe;
    pr->indirect_sent = true;
    struct disc_member *t = disc_swim_find_mut(s, pr->target);
    if (t == NULL || !disc_swim_is_live(t))
        return;
    struct disc_msg msg = {.type = DISC_MSG_PING_REQ, .seq = pr->seq};
    memcpy(msg.target, t->id, sizeof(msg.target));
    memcpy(msg.target_addr, t->addr[DISC_ADDR_GOSSIP], sizeof(msg.target_addr));
    size_t k = disc_swim_pick(s, s->cfg.indirect_checks, t->id, 0, false);
    /* disc_swim_pick with a finite k also returns SUSPECT members: only
     * members we believe alive make useful helpers. */
    for (size_t i = 0; i < k; i++) {
        if (s->scratch[i]->state != DISC_MEMBER_ST_ALIVE)
            continue;
        pr->expected_nacks++;
        s->stats.indirect_probes++;
        disc_swim_send(s, s->scratch[i]->addr[DISC_ADDR_GOSSIP], &msg, true);
    }
}

static void disc_swim_gossip(struct disc_swim *s, uint64_t now)
{
    if (s->n_bq == 0)
        return;
    size_t k = disc_swim_pick(s, s->cfg.gossip_nodes, NULL, now, true);
    for (size_t i = 0; i < k && s->n_bq > 0; i++)
        disc_swim_send(s, s->scratch[i]->addr[DISC_ADDR_GOSSIP], NULL, true);
}

static uint64_t disc_swim_pushpull_interval(const struct disc_swim *s)
{
    /* memberlist's pushPullScale: beyond 32 members, slow down by log2. */
    size_t n = disc_swim_live_count(s);
    uint64_t mult = 1;
    if (n > 32)
        mult = (uint64_t)ceil(log2((double)n) - log2(32.0)) + 1;
    return (uint64_t)s->cfg.pushpull_interval_ms * mult;
}

static void disc_swim_relays_expire(struct disc_swim *s, uint64_t now)
{
    for (size_t i = s->n_relays; i-- > 0;) {
        struct disc_relay r = s->relays[i];
        if (r.deadline > now)
            continue;
        s->relays[i] = s->relays[--s->n_relays];
        struct disc_msg nack = {.type = DISC_MSG_NACK, .seq = r.origin_seq};
        disc_swim_send(s, r.origin, &nack, false);
    }
}

/*
 * Once a partition has lasted past the queued dead notices, nothing else
 * crosses it: probes, gossip and push/pull go to live members only. Like
 * Serf's reconnect, a push/pull with one random DEAD member now and then
 * lets a healed link carry state again; each side then learns that the
 * other thinks it dead and refutes, and the halves merge.
 */
static void disc_swim_reconnect(struct disc_swim *s, uint64_t now)
{
    s->next_reconnect_at = now + s->cfg.reconnect_interval_ms;
    size_t n = 0;
    for (size_t i = 0; i < s->n_members; i++) {
        struct disc_member *m = s->members[i];
        if (!m->self && m->state == DISC_MEMBER_ST_DEAD)
            s->scratch[n++] = m;
    }
    if (n > 0 && s->ops.pushpull != NULL)
        s->ops.pushpull(s->arg, s->scratch[wr_rand_below((uint32_t)n)]->addr[DISC_ADDR_GOSSIP]);
}

void disc__swim_tick(struct disc_swim *s, uint64_t now)
{
    for (size_t i = 0; i < s->n_members; i++) {
        struct disc_member *m = s->members[i];
        if (m->state == DISC_MEMBER_ST_SUSPECT && m->susp->deadline <= now) {
            DISC_LOG(&s->cfg, WR_LOG_INFO, "suspect_timeout", "member=%s confirmations=%u", m->id,
                     m->susp->n_confirm);
            disc_swim_set_state(s, m, DISC_MEMBER_ST_DEAD, now, "suspect_timeout");
            disc_swim_queue_simple(s, DISC_UPD_DEAD, m, s->self->id);
        }
    }
    disc_swim_relays_expire(s, now);
    if (s->left) {
        s->probe.active = false;
        if (now >= s->next_gossip_at) {
            disc_swim_gossip(s, now);
            s->next_gossip_at = now + s->cfg.gossip_interval_ms;
        }
        return;
    }
    if (s->probe.active && !s->probe.indirect_sent && now >= s->probe.timeout_at)
        disc_swim_probe_indirect(s);
    if (now >= s->next_probe_at) {
        if (s->probe.active)
            disc_swim_probe_end(s, now);
        disc_swim_reap(s, now);
        s->next_probe_at = now + disc_swim_scaled(s, s->cfg.probe_interval_ms);
        disc_swim_probe_start(s, now);
    }
    if (now >= s->next_gossip_at) {
        disc_swim_gossip(s, now);
        s->next_gossip_at = now + s->cfg.gossip_interval_ms;
    }
    if (now >= s->next_pushpull_at) {
        s->next_pushpull_at = now + disc_swim_pushpull_interval(s);
        size_t k = disc_swim_pick(s, 1, NULL, now, false);
        if (k == 1 && s->ops.pushpull != NULL)
            s->ops.pushpull(s->arg, s->scratch[0]->addr[DISC_ADDR_GOSSIP]);
    }
    if (now >= s->next_reconnect_at)
        disc_swim_reconnect(s, now);
}

uint64_t disc__swim_next_deadline(const struct disc_swim *s)
{
    /* Gossip rounds only matter while updates wait: an idle member wakes up
     * for probes alone. A round overdue when an update arrives runs at once. */
    uint64_t d = s->n_bq > 0 ? s->next_gossip_at : UINT64_MAX;
    if (!s->left) {
        if (s->next_probe_at < d)
            d = s->next_probe_at;
        if (s->next_pushpull_at < d)
            d = s->next_pushpull_at;
        if (s->next_reconnect_at < d)
            d = s->next_reconnect_at;
        if (s->probe.active && !s->probe.indirect_sent && s->probe.timeout_at < d)
            d = s->probe.timeout_at;
    }
    for (size_t i = 0; i < s->n_relays; i++)
        if (s->relays[i].deadline < d)
            d = s->relays[i].deadline;
    for (size_t i = 0; i < s->n_members; i++) {
        const struct disc_member *m = s->members[i];
        if (m->state == DISC_MEMBER_ST_SUSPECT && m->susp->deadline < d)
            d = m->susp->deadline;
    }
    return d;
}

/* ---- incoming packets ---- */

/*
 * Acks a ping. When the pinger's address is that of a member we hold DEAD or
 * LEFT, it is back (a restart) and we missed its new alive: the ack carries
 * our stale verdict, so that the pinger re-asserts itself (see
 * disc_swim_on_stale_self) and its alive spreads again.
 */
static void disc_swim_ack(struct disc_swim *s, const char *from, uint32_t seq)
{
    struct disc_packet *p = &s->pkt;
    disc__packet_clear(p);
    p->msg.type = DISC_MSG_ACK;
    p->msg.seq = seq;
    for (size_t i = 0; i < s->n_members; i++) {
        const struct disc_member *m = s->members[i];
        if (m->self || disc_swim_is_live(m) || strcmp(m->addr[DISC_ADDR_GOSSIP], from) != 0)
            continue;
        struct disc_update *u = &p->upd[p->n_updates++];
        u->kind = m->state == DISC_MEMBER_ST_LEFT ? DISC_UPD_LEAVE : DISC_UPD_DEAD;
        memcpy(u->node, m->id, sizeof(u->node));
        u->inc = m->inc;
        if (u->kind == DISC_UPD_DEAD)
            memcpy(u->from, s->self->id, sizeof(u->from));
        break;
    }
    disc_swim_fill(s, p);
    s->stats.msgs_out++;
    s->ops.send(s->arg, from, p);
    disc__packet_clear(p);
}

static void disc_swim_on_ack(struct disc_swim *s, uint32_t seq)
{
    if (s->probe.active && s->probe.seq == seq) {
        s->probe.active = false;
        if (s->stats.awareness > 0)
            s->stats.awareness--;
        return;
    }
    for (size_t i = 0; i < s->n_relays; i++) {
        if (s->relays[i].seq != seq)
            continue;
        struct disc_relay r = s->relays[i];
        s->relays[i] = s->relays[--s->n_relays];
        struct disc_msg ack = {.type = DISC_MSG_ACK, .seq = r.origin_seq};
        disc_swim_send(s, r.origin, &ack, true);
        return;
    }
}

static void disc_swim_on_ping_req(struct disc_swim *s, uint64_t now, const char *from,
                                  const struct disc_msg *m)
{
    if (s->n_relays >= s->cfg.max_relays || m->target_addr[0] == '\0')
        return;
    struct disc_relay *r = &s->relays[s->n_relays++];
    r->seq = ++s->seq;
    r->origin_seq = m->seq;
    disc_swim_copy_str(r->origin, sizeof(r->origin), from);
    r->deadline = now + s->cfg.probe_timeout_ms;
    s->stats.relays++;
    struct disc_msg ping = {.type = DISC_MSG_PING, .seq = r->seq};
    memcpy(ping.target, m->target, sizeof(ping.target));
    disc_swim_send(s, m->target_addr, &ping, true);
}

void disc__swim_on_packet(struct disc_swim *s, uint64_t now, const char *from,
                          const struct disc_packet *p)
{
    s->stats.msgs_in++;
    for (uint32_t i = 0; i < p->n_updates && i < DISC_MAX_PIGGY; i++)
        disc_swim_apply(s, now, &p->upd[i]);
    switch (p->msg.type) {
    case DISC_MSG_PING:
        /* A ping for another id reached a new owner of that address: no ack. */
        if (p->msg.target[0] != '\0' && strcmp(p->msg.target, s->self->id) != 0)
            break;
        if (!s->left)
            disc_swim_ack(s, from, p->msg.seq);
        break;
    case DISC_MSG_ACK:
        disc_swim_on_ack(s, p->msg.seq);
        break;
    case DISC_MSG_PING_REQ:
        if (!s->left)
            disc_swim_on_ping_req(s, now, from, &p->msg);
        break;
    case DISC_MSG_NACK:
        if (s->probe.active && s->probe.seq == p->msg.seq)
            s->probe.nacks++;
        break;
    default:
        break;
    }
}

/* ---- push/pull ---- */

int disc__swim_state_build(const struct disc_swim *s, bool join, struct disc_state *st)
{
    memset(st, 0, sizeof(*st));
    st->join = join;
    st->rec = calloc(s->n_members ? s->n_members : 1, sizeof(st->rec[0]));
    if (st->rec == NULL)
        return WR_ENOMEM;
    for (size_t i = 0; i < s->n_members; i++) {
        const struct disc_member *m = s->members[i];
        struct disc_update *u = &st->rec[st->n++];
        static const enum disc_upd_kind kinds[DISC_MEMBER_ST__COUNT] = {
            DISC_UPD_ALIVE, DISC_UPD_SUSPECT, DISC_UPD_DEAD, DISC_UPD_LEAVE};
        u->kind = kinds[m->state];
        memcpy(u->node, m->id, sizeof(u->node));
        u->inc = m->inc;
        if (u->kind == DISC_UPD_SUSPECT || u->kind == DISC_UPD_DEAD)
            memcpy(u->from, s->self->id, sizeof(u->from));
        u->role = m->role;
        memcpy(u->addr, m->addr, sizeof(u->addr));
        u->tver = m->tver;
        u->tunnels = disc__tunset_ref(m->tunnels);
    }
    return 0;
}

void disc__swim_state_merge(struct disc_swim *s, uint64_t now, const struct disc_state *st)
{
    for (uint32_t i = 0; i < st->n; i++) {
        const struct disc_update *r = &st->rec[i];
        struct disc_member *m = disc_swim_find_mut(s, r->node);
        switch (r->kind) {
        case DISC_UPD_ALIVE:
            disc_swim_on_alive(s, now, r);
            break;
        case DISC_UPD_SUSPECT:
        case DISC_UPD_DEAD:
            /*
             * memberlist: a remote "dead" is only a suspicion here, so that
             * we give the member its own chance to refute. An unknown
             * suspect member is learnt first (it may well be alive).
             */
            if (m == NULL && r->kind == DISC_UPD_SUSPECT) {
                struct disc_update a;
                disc__update_copy(&a, r);
                a.kind = DISC_UPD_ALIVE;
                disc_swim_on_alive(s, now, &a);
                disc__update_clear(&a);
            }
            disc_swim_on_suspect(s, now, r->node, r->inc, r->from);
            break;
        case DISC_UPD_LEAVE:
            disc_swim_on_leave(s, now, r->node, r->inc);
            break;
        default:
            break;
        }
    }
}

/* ---- lifecycle and local changes ---- */

struct disc_swim *disc__swim_new(const struct disc_config *cfg, const struct disc_self *self,
                                 uint64_t now, const struct disc_swim_ops *ops, void *arg)
{
    size_t idlen = strnlen(self->id, sizeof(self->id));
    if (idlen == sizeof(self->id) || !wr_id_is_valid(self->id, idlen) ||
        (unsigned)self->role >= DISC_ROLE__COUNT)
        return NULL;
    for (int k = 0; k < DISC_ADDR__COUNT; k++) {
        size_t al = strnlen(self->addr[k], DISC_ADDR_MAX);
        if (!disc__addr_is_valid(self->addr[k], al))
            return NULL;
    }
    struct disc_swim *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->cfg = *cfg;
    disc_config_defaults(&s->cfg);
    s->ops = *ops;
    s->arg = arg;
    s->members = calloc(s->cfg.max_members, sizeof(s->members[0]));
    s->probe_list = calloc(s->cfg.max_members, sizeof(s->probe_list[0]));
    s->scratch = calloc(s->cfg.max_members, sizeof(s->scratch[0]));
    s->relays = calloc(s->cfg.max_relays, sizeof(s->relays[0]));
    s->bq = calloc(s->cfg.max_broadcasts, sizeof(s->bq[0]));
    s->self = calloc(1, sizeof(*s->self));
    if (s->members == NULL || s->probe_list == NULL || s->scratch == NULL || s->relays == NULL ||
        s->bq == NULL || s->self == NULL)
        goto fail_alloc;
    memcpy(s->self->id, self->id, idlen);
    s->self->self = true;
    s->self->role = self->role;
    memcpy(s->self->addr, self->addr, sizeof(s->self->addr));
    s->self->inc = s->cfg.initial_incarnation;
    s->self->state = DISC_MEMBER_ST_ALIVE;
    s->self->state_since = now;
    s->members[s->n_members++] = s->self;
    /* Staggered start, so that a fleet started at once does not probe in step. */
    s->next_probe_at = now + wr_rand_below(s->cfg.probe_interval_ms);
    s->next_gossip_at = now + s->cfg.gossip_interval_ms;
    /*
     * The first push/pull comes early (2 to 4 probe intervals): members that
     * joined through the same seed a moment apart, and missed each other's
     * alive gossip, learn each other then instead of one full interval later
     * (Serf's 30-90 s join tail).
     */
    s->next_pushpull_at =
        now + 2 * (uint64_t)s->cfg.probe_interval_ms + wr_rand_below(2 * s->cfg.probe_interval_ms);
    s->next_reconnect_at = now + s->cfg.reconnect_interval_ms;
    struct disc_update u;
    disc_swim_self_alive(s, &u);
    disc_swim_queue(s, &u);
    disc__update_clear(&u);
    return s;

fail_alloc:
    free(s->self);
    free(s->bq);
    free(s->relays);
    free(s->scratch);
    free(s->probe_list);
    free(s->members);
    free(s);
    return NULL;
}

void disc__swim_free(struct disc_swim *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_members; i++) {
        disc__tunset_unref(s->members[i]->tunnels);
        free(s->members[i]->susp);
        free(s->members[i]);
    }
    for (size_t i = 0; i < s->n_bq; i++)
        disc__update_clear(&s->bq[i].u);
    disc__packet_clear(&s->pkt);
    free(s->bq);
    free(s->relays);
    free(s->scratch);
    free(s->probe_list);
    free(s->members);
    free(s);
}

int disc__swim_leave(struct disc_swim *s, uint64_t now)
{
    if (s->left)
        return WR_ECLOSED;
    s->left = true;
    s->probe.active = false;
    disc_swim_set_state(s, s->self, DISC_MEMBER_ST_LEFT, now, "leave");
    struct disc_update u;
    memset(&u, 0, sizeof(u));
    u.kind = DISC_UPD_LEAVE;
    memcpy(u.node, s->self->id, sizeof(u.node));
    u.inc = s->self->inc;
    disc_swim_queue(s, &u);
    /* Tell everyone now rather than waiting for gossip: a leave must be seen
     * fast, and it happens once. */
    struct disc_packet *p = &s->pkt;
    for (size_t i = 0; i < s->n_members; i++) {
        struct disc_member *m = s->members[i];
        if (m->self || !disc_swim_is_live(m))
            continue;
        disc__packet_clear(p);
        disc__update_copy(&p->upd[0], &u);
        p->n_updates = 1;
        s->stats.msgs_out++;
        s->ops.send(s->arg, m->addr[DISC_ADDR_GOSSIP], p);
    }
    disc__packet_clear(p);
    disc__update_clear(&u);
    DISC_LOG(&s->cfg, WR_LOG_INFO, "leave", "inc=%llu", (unsigned long long)s->self->inc);
    return 0;
}

bool disc__swim_has_left(const struct disc_swim *s)
{
    return s->left;
}

void disc__swim_announce(struct disc_swim *s, uint64_t now, const char *addr)
{
    (void)now;
    struct disc_packet *p = &s->pkt;
    disc__packet_clear(p);
    disc_swim_self_alive(s, &p->upd[0]);
    p->n_updates = 1;
    p->msg.type = DISC_MSG_PING;
    p->msg.seq = ++s->seq;
    s->stats.msgs_out++;
    s->ops.send(s->arg, addr, p);
    disc__packet_clear(p);
}

int disc__swim_set_tunnels(struct disc_swim *s, const struct disc_tunnel_entry *e, size_t n)
{
    struct disc_tunset *t = NULL;
    if (n > DISC_MAX_TUNNEL_ENTRIES)
        return WR_ETOOBIG;
    if (n > 0 && s->self->role == DISC_ROLE_OBSERVER)
        return WR_EUSAGE;
    if (n > 0) {
        t = disc__tunset_new((uint32_t)n);
        if (t == NULL)
            return WR_ENOMEM;
        memcpy(t->e, e, n * sizeof(e[0]));
        int err = disc__tunset_normalize(t);
        if (err != 0) {
            disc__tunset_unref(t);
            return err;
        }
    }
    disc__tunset_unref(s->self->tunnels);
    s->self->tunnels = t;
    s->self->tver++;
    struct disc_update u;
    disc_swim_self_alive(s, &u);
    disc_swim_queue(s, &u);
    disc__update_clear(&u);
    return 0;
}

/* ---- queries ---- */

const struct disc_member *disc__swim_self(const struct disc_swim *s)
{
    return s->self;
}

const struct disc_member *disc__swim_find(const struct disc_swim *s, const char *id)
{
    return disc_swim_find_mut(s, id);
}

size_t disc__swim_member_count(const struct disc_swim *s)
{
    return s->n_members;
}

const struct disc_member *disc__swim_member_at(const struct disc_swim *s, size_t i)
{
    return i < s->n_members ? s->members[i] : NULL;
}

void disc__swim_get_stats(const struct disc_swim *s, struct disc_stats *out)
{
    *out = s->stats;
    memset(out->members, 0, sizeof(out->members));
    for (size_t i = 0; i < s->n_members; i++)
        out->members[s->members[i]->state]++;
}

struct disc_stats *disc__swim_stats_mut(struct disc_swim *s)
{
    return &s->stats;
}

size_t disc__swim_queue_len(const struct disc_swim *s)
{
    return s->n_bq;
}
