/*
 * test_disc_swim.c: the SWIM + Lifeguard state machine (disc_swim.c) driven
 * by synthetic events and synthetic time, no sockets: probes and acks,
 * indirect probes, suspicion and its timeout (scaling with n, shrinking
 * with confirmations), refutation, incarnation ordering, leave, rejoin after
 * a restart, tunnel sets, the broadcast queue, reaping. A simulated network
 * of machines (packets really encoded and decoded by disc_codec.c) checks
 * convergence, failure detection and leave propagation at N = 32 against
 * the targets, in synthetic milliseconds.
 */
/* link: disc_lib_int */
#include "test.h"

#include "disc_int.h"
#include "wr/log.h"

/* ---- a recorder: one machine whose sends we inspect ---- */

#define REC_MAX 256

struct rec {
    struct disc_swim *s;
    size_t n;
    char to[REC_MAX][DISC_ADDR_MAX];
    struct disc_packet pkt[REC_MAX];
    size_t pushpulls;
    size_t ev[DISC_EV__COUNT];
    char last_ev_member[WR_ID_MAX + 1];
    enum disc_member_state last_old;
};

static void on_rec_send(void *arg, const char *addr, const struct disc_packet *p)
{
    struct rec *r = arg;
    struct wr_buf b = {0};
    /* Everything the machine emits encodes, fits a packet, and decodes. */
    ASSERT_OK(disc__codec_packet_encode(p, &b));
    ASSERT_LE(b.len + DISC_SEAL_OVERHEAD, 1400);
    ASSERT(r->n < REC_MAX);
    snprintf(r->to[r->n], DISC_ADDR_MAX, "%s", addr);
    ASSERT_OK(disc__codec_packet_decode(wr_buf_peek(&b), &r->pkt[r->n], NULL));
    r->n++;
    wr_buf_free(&b);
}

static void on_rec_pushpull(void *arg, const char *addr)
{
    (void)addr;
    ((struct rec *)arg)->pushpulls++;
}

static void on_rec_event(void *arg, enum disc_event_type ev, const struct disc_member *m,
                         enum disc_member_state old)
{
    struct rec *r = arg;
    r->ev[ev]++;
    snprintf(r->last_ev_member, sizeof(r->last_ev_member), "%s", disc_member_id(m));
    r->last_old = old;
}

static void rec_clear(struct rec *r)
{
    for (size_t i = 0; i < r->n; i++)
        disc__packet_clear(&r->pkt[i]);
    r->n = 0;
}

static struct rec *rec_new(const char *id, const struct disc_config *cfg, uint64_t now)
{
    static const struct disc_swim_ops ops = {
        .send = on_rec_send, .pushpull = on_rec_pushpull, .event = on_rec_event};
    struct rec *r = calloc(1, sizeof(*r));
    struct disc_self self = {0};
    struct disc_config c = cfg ? *cfg : (struct disc_config){0};
    snprintf(self.id, sizeof(self.id), "%s", id);
    snprintf(self.addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX, "addr-%s", id);
    r->s = disc__swim_new(&c, &self, now, &ops, r);
    ASSERT(r->s != NULL);
    return r;
}

static void rec_free(struct rec *r)
{
    rec_clear(r);
    disc__swim_free(r->s);
    free(r);
}

static struct disc_update upd_alive(const char *id, uint64_t inc)
{
    struct disc_update u = {.kind = DISC_UPD_ALIVE, .inc = inc};
    snprintf(u.node, sizeof(u.node), "%s", id);
    snprintf(u.addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX, "addr-%s", id);
    return u;
}

static struct disc_update upd_simple(enum disc_upd_kind k, const char *id, uint64_t inc,
                                     const char *from)
{
    struct disc_update u = {.kind = k, .inc = inc};
    snprintf(u.node, sizeof(u.node), "%s", id);
    snprintf(u.from, sizeof(u.from), "%s", from ? from : "");
    return u;
}

/* Delivers one update to <r> as a gossip-only packet from <from>. */
static void deliver(struct rec *r, uint64_t now, const struct disc_update *u)
{
    static struct disc_packet p;
    memset(&p, 0, sizeof(p));
    disc__update_copy(&p.upd[0], u);
    p.n_updates = 1;
    disc__swim_on_packet(r->s, now, "addr-x", &p);
    disc__packet_clear(&p);
}

static void deliver_msg(struct rec *r, uint64_t now, const char *from, enum disc_msg_type t,
                        uint32_t seq)
{
    static struct disc_packet p;
    memset(&p, 0, sizeof(p));
    p.msg.type = t;
    p.msg.seq = seq;
    disc__swim_on_packet(r->s, now, from, &p);
}

static enum disc_member_state state_of(struct rec *r, const char *id)
{
    const struct disc_member *m = disc__swim_find(r->s, id);
    ASSERT(m != NULL);
    return disc_member_get_state(m);
}

/* Runs ticks from <*now> to <until> (1 ms steps at deadlines). */
static void run_until(struct rec *r, uint64_t *now, uint64_t until)
{
    while (*now < until) {
        uint64_t d = disc__swim_next_deadline(r->s);
        *now = d < until ? (d > *now ? d : *now + 1) : until;
        disc__swim_tick(r->s, *now);
    }
}

/* The first recorded ping, or -1. */
static ssize_t find_sent(struct rec *r, enum disc_msg_type t, const char *to)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->pkt[i].msg.type == t && (to == NULL || strcmp(r->to[i], to) == 0))
            return (ssize_t)i;
    return -1;
}

static void add_members(struct rec *r, uint64_t now, int n)
{
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%02d", i);
        struct disc_update u = upd_alive(id, 1);
        deliver(r, now, &u);
    }
}

/* ---- timeouts and limits ---- */

TEST(swim_suspicion_timeout_scales_with_n)
{
    struct disc_config c = {0};
    uint64_t min, max, min2, max2;
    disc_config_defaults(&c);
    disc__suspicion_bounds(&c, 1, &min, &max);
    ASSERT_EQ(3 * 500, min); /* log10 scale is floored at 1 */
    ASSERT_EQ(4 * min, max);
    disc__suspicion_bounds(&c, 10, &min2, &max2);
    ASSERT_EQ(min, min2);
    disc__suspicion_bounds(&c, 32, &min, &max);
    ASSERT_EQ(2257, min); /* 3 * log10(32) * 500 */
    ASSERT_EQ(4 * 2257, max);
    disc__suspicion_bounds(&c, 1000, &min2, &max2);
    ASSERT_EQ(4500, min2);
    ASSERT(min2 > min);
}

TEST(swim_confirmations_shrink_timeout_formula)
{
    uint64_t min = 1000, max = 4000;
    ASSERT_EQ(max, disc__suspicion_timeout(min, max, 3, 0));
    uint64_t t1 = disc__suspicion_timeout(min, max, 3, 1);
    uint64_t t2 = disc__suspicion_timeout(min, max, 3, 2);
    ASSERT(t1 < max && t2 < t1 && t2 > min);
    ASSERT_EQ(2500, t1); /* 4000 - 3000 * log(2)/log(4) */
    ASSERT_EQ(min, disc__suspicion_timeout(min, max, 3, 3));
    ASSERT_EQ(min, disc__suspicion_timeout(min, max, 3, 9));
    ASSERT_EQ(min, disc__suspicion_timeout(min, max, 0, 0));
}

TEST(swim_retransmit_limit_scales_with_n)
{
    struct rec *r = rec_new("self", NULL, 0);
    ASSERT_EQ(6, disc__swim_retransmit_limit(r->s)); /* n=1: 6 * ceil(log10(2)) = 6 */
    add_members(r, 0, 8);
    ASSERT_EQ(6, disc__swim_retransmit_limit(r->s)); /* n=9: ceil(log10(10)) = 1 */
    add_members(r, 0, 9);
    ASSERT_EQ(12, disc__swim_retransmit_limit(r->s)); /* n=10: ceil(1.04) = 2 */
    add_members(r, 0, 99);                            /* m00..m98: n = 100 */
    ASSERT_EQ(18, disc__swim_retransmit_limit(r->s)); /* ceil(log10(101)) = 3 */
    rec_free(r);
    /* memberlist's multiplier gives memberlist's numbers. */
    struct disc_config c = {.retransmit_mult = 4};
    r = rec_new("self", &c, 0);
    add_members(r, 0, 31);
    ASSERT_EQ(8, disc__swim_retransmit_limit(r->s));
    rec_free(r);
}

/* ---- probing ---- */

TEST(swim_probe_ack_keeps_alive)
{
    uint64_t now = 1000;
    struct rec *r = rec_new("a", NULL, now);
    add_members(r, now, 1);
    ssize_t i = -1;
    while (i < 0 && now < 3000) {
        run_until(r, &now, now + 10);
        i = find_sent(r, DISC_MSG_PING, "addr-m00");
    }
    ASSERT(i >= 0);
    ASSERT_STR_EQ("m00", r->pkt[i].msg.target);
    deliver_msg(r, now, "addr-m00", DISC_MSG_ACK, r->pkt[i].msg.seq);
    rec_clear(r);
    run_until(r, &now, now + 400); /* past the probe timeout, before the next one's */
    ASSERT_EQ(-1, find_sent(r, DISC_MSG_PING_REQ, NULL));
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(r, "m00"));
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_GE(st.probes, 1);
    ASSERT_EQ(0, st.suspicions);
    ASSERT_EQ(2, st.members[DISC_MEMBER_ST_ALIVE]);
    rec_free(r);
}

TEST(swim_indirect_probe_ack_through_helper)
{
    uint64_t now = 1000;
    struct rec *r = rec_new("a", NULL, now);
    add_members(r, now, 4); /* m00..m03 */
    /* Find a probe and answer only through a helper. */
    ssize_t i = -1;
    while (i < 0) {
        run_until(r, &now, now + 10);
        i = find_sent(r, DISC_MSG_PING, NULL);
    }
    uint32_t seq = r->pkt[i].msg.seq;
    char target[WR_ID_MAX + 1];
    snprintf(target, sizeof(target), "%s", r->pkt[i].msg.target);
    rec_clear(r);
    run_until(r, &now, now + 200); /* the probe timeout */
    size_t reqs = 0;
    for (size_t j = 0; j < r->n; j++) {
        if (r->pkt[j].msg.type != DISC_MSG_PING_REQ)
            continue;
        reqs++;
        ASSERT_EQ(seq, r->pkt[j].msg.seq);
        ASSERT_STR_EQ(target, r->pkt[j].msg.target);
        ASSERT(strcmp(r->to[j] + 5, target) != 0); /* never ask the target itself */
    }
    ASSERT_EQ(3, reqs); /* k = 3 helpers */
    deliver_msg(r, now, "addr-helper", DISC_MSG_ACK, seq);
    run_until(r, &now, now + 400);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(r, target));
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_EQ(3, st.indirect_probes);
    ASSERT_EQ(0, st.probe_failures);
    rec_free(r);
}

TEST(swim_relay_ping_req_ack_and_nack)
{
    uint64_t now = 1000;
    struct rec *r = rec_new("helper", NULL, now);
    static struct disc_packet p;
    memset(&p, 0, sizeof(p));
    p.msg = (struct disc_msg){.type = DISC_MSG_PING_REQ, .seq = 77, .target = "t"};
    snprintf(p.msg.target_addr, DISC_ADDR_MAX, "addr-t");
    disc__swim_on_packet(r->s, now, "addr-origin", &p);
    ssize_t i = find_sent(r, DISC_MSG_PING, "addr-t");
    ASSERT(i >= 0);
    uint32_t relay_seq = r->pkt[i].msg.seq;
    deliver_msg(r, now + 5, "addr-t", DISC_MSG_ACK, relay_seq);
    i = find_sent(r, DISC_MSG_ACK, "addr-origin");
    ASSERT(i >= 0);
    ASSERT_EQ(77, r->pkt[i].msg.seq);
    rec_clear(r);
    /* A second request that the target never answers: a nack at the timeout. */
    p.msg.seq = 78;
    disc__swim_on_packet(r->s, now, "addr-origin", &p);
    run_until(r, &now, now + 250);
    i = find_sent(r, DISC_MSG_NACK, "addr-origin");
    ASSERT(i >= 0);
    ASSERT_EQ(78, r->pkt[i].msg.seq);
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_EQ(2, st.relays);
    rec_free(r);
}

TEST(swim_failed_probe_suspects_then_dead)
{
    uint64_t now = 1000;
    struct rec *r = rec_new("a", NULL, now);
    add_members(r, now, 3);
    /* Nobody answers anything. */
    uint64_t t0 = now;
    while (state_of(r, "m00") == DISC_MEMBER_ST_ALIVE && now < t0 + 10000)
        run_until(r, &now, now + 10);
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, state_of(r, "m00"));
    ASSERT_EQ(DISC_EV_STATE, DISC_EV_STATE);
    uint64_t suspected = now;
    /* n = 4, k = mult - 2 = 1: no confirmation, so the full max timeout. */
    uint64_t min, max;
    struct disc_config c = {0};
    disc_config_defaults(&c);
    disc__suspicion_bounds(&c, 4, &min, &max);
    run_until(r, &now, suspected + max - 20);
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, state_of(r, "m00"));
    run_until(r, &now, suspected + max + 200);
    ASSERT_EQ(DISC_MEMBER_ST_DEAD, state_of(r, "m00"));
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_GE(st.suspicions, 1);
    ASSERT_GE(st.probe_failures, 1);
    /* The dead verdict is gossiped: a dead update about m00 from us. */
    bool seen = false;
    for (size_t i = 0; i < r->n; i++)
        for (uint32_t j = 0; j < r->pkt[i].n_updates; j++)
            if (r->pkt[i].upd[j].kind == DISC_UPD_DEAD && strcmp(r->pkt[i].upd[j].node, "m00") == 0)
                seen = seen || strcmp(r->pkt[i].upd[j].from, "a") == 0;
    ASSERT(seen);
    rec_free(r);
}

TEST(swim_confirmations_shorten_suspicion)
{
    /* mult 5: k = 3 expected confirmations. */
    struct disc_config c = {.suspicion_mult = 5};
    uint64_t now = 1000;
    struct rec *r = rec_new("a", &c, now);
    add_members(r, now, 10); /* n = 11 */
    struct disc_update u = upd_simple(DISC_UPD_SUSPECT, "m00", 1, "m01");
    deliver(r, now, &u);
    const struct disc_member *m = disc__swim_find(r->s, "m00");
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, disc_member_get_state(m));
    uint64_t d0 = m->susp->deadline;
    ASSERT_EQ(now + m->susp->max, d0);
    /* The originator again, and an empty sender: no confirmation. */
    deliver(r, now + 1, &u);
    ASSERT_EQ(d0, m->susp->deadline);
    u = upd_simple(DISC_UPD_SUSPECT, "m00", 1, "m02");
    deliver(r, now + 2, &u);
    uint64_t d1 = m->susp->deadline;
    ASSERT(d1 < d0);
    deliver(r, now + 3, &u); /* the same confirmer twice */
    ASSERT_EQ(d1, m->susp->deadline);
    u = upd_simple(DISC_UPD_SUSPECT, "m00", 1, "m03");
    deliver(r, now + 4, &u);
    uint64_t d2 = m->susp->deadline;
    ASSERT(d2 < d1);
    u = upd_simple(DISC_UPD_SUSPECT, "m00", 1, "m04");
    deliver(r, now + 5, &u);
    ASSERT_EQ(now + m->susp->min, m->susp->deadline);
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_EQ(3, st.confirmations);
    run_until(r, &now, now + m->susp->min + 1);
    ASSERT_EQ(DISC_MEMBER_ST_DEAD, state_of(r, "m00"));
    rec_free(r);
}

TEST(swim_awareness_slows_a_struggling_member)
{
    /* Lifeguard local health: probes that fail while the helpers do not
     * even nack raise the score, and the probe interval stretches with it. */
    uint64_t now = 1000;
    struct rec *r = rec_new("a", NULL, now);
    add_members(r, now, 5);
    struct disc_stats st;
    do {
        run_until(r, &now, now + 10);
        disc__swim_get_stats(r->s, &st);
    } while (st.probe_failures < 2 && now < 20000);
    ASSERT_GE(st.probe_failures, 2);
    ASSERT_GE(st.awareness, 2);
    uint32_t aw = st.awareness;
    /* The gap between two probes is now (awareness + 1) intervals. */
    rec_clear(r);
    uint64_t first = 0, second = 0;
    while (second == 0 && now < 60000) {
        run_until(r, &now, now + 10);
        for (size_t i = 0; i < r->n; i++) {
            if (r->pkt[i].msg.type != DISC_MSG_PING)
                continue;
            if (first == 0)
                first = now;
            else if (now > first)
                second = now;
            /* Answer it: the score comes down one step per success. */
            deliver_msg(r, now, r->to[i], DISC_MSG_ACK, r->pkt[i].msg.seq);
        }
        rec_clear(r);
    }
    ASSERT(second > first);
    ASSERT_GE(second - first, (uint64_t)500 * aw - 10);
    disc__swim_get_stats(r->s, &st);
    ASSERT(st.awareness < aw);
    rec_free(r);
}

/* ---- incarnation rules ---- */

static size_t log_lines;
static char log_last_ev[32];

static void on_log(void *arg, enum wr_log_level lvl, const char *ev, const char *kv)
{
    (void)arg;
    (void)lvl;
    (void)kv;
    log_lines++;
    snprintf(log_last_ev, sizeof(log_last_ev), "%s", ev);
}

TEST(swim_refutes_suspicion_about_self)
{
    uint64_t now = 1000;
    /* Log lines go to the embedder's callback, not to stderr. */
    struct disc_config c = {.initial_incarnation = 5, .log_cb = on_log};
    wr_log_level_cur = WR_LOG_INFO;
    struct rec *r = rec_new("a", &c, now);
    add_members(r, now, 2);
    struct disc_update u = upd_simple(DISC_UPD_SUSPECT, "a", 4, "m00");
    deliver(r, now, &u); /* older: ignored */
    ASSERT_EQ(5, disc_member_incarnation(disc__swim_self(r->s)));
    u = upd_simple(DISC_UPD_SUSPECT, "a", 5, "m00");
    deliver(r, now, &u);
    ASSERT_EQ(6, disc_member_incarnation(disc__swim_self(r->s)));
    u = upd_simple(DISC_UPD_DEAD, "a", 9, "m01");
    deliver(r, now, &u);
    ASSERT_EQ(10, disc_member_incarnation(disc__swim_self(r->s)));
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, disc_member_get_state(disc__swim_self(r->s)));
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_EQ(2, st.refutations);
    ASSERT_EQ(2, log_lines);
    ASSERT_STR_EQ("refute", log_last_ev);
    ASSERT_GE(st.awareness, 1); /* Lifeguard: we may be the slow one */
    /* The refutation is gossiped as alive(a, 10). */
    rec_clear(r);
    run_until(r, &now, now + 150);
    bool seen = false;
    for (size_t i = 0; i < r->n; i++)
        for (uint32_t j = 0; j < r->pkt[i].n_updates; j++)
            if (r->pkt[i].upd[j].kind == DISC_UPD_ALIVE && strcmp(r->pkt[i].upd[j].node, "a") == 0)
                seen = seen || r->pkt[i].upd[j].inc == 10;
    ASSERT(seen);
    rec_free(r);
}

TEST(swim_incarnation_ordering)
{
    uint64_t now = 1000;
    struct rec *r = rec_new("a", NULL, now);
    struct disc_update u = upd_alive("b", 5);
    deliver(r, now, &u);
    ASSERT_EQ(1, r->ev[DISC_EV_JOIN]);
    /* suspect with a lower incarnation: ignored. */
    u = upd_simple(DISC_UPD_SUSPECT, "b", 4, "c");
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(r, "b"));
    /* suspect(5) applies. */
    u = upd_simple(DISC_UPD_SUSPECT, "b", 5, "c");
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, state_of(r, "b"));
    /* alive with the same incarnation does not refute. */
    u = upd_alive("b", 5);
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, state_of(r, "b"));
    /* alive(6) does. */
    u = upd_alive("b", 6);
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(r, "b"));
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, r->last_old);
    /* dead(5) is older: ignored; dead(6) applies. */
    u = upd_simple(DISC_UPD_DEAD, "b", 5, "c");
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(r, "b"));
    u = upd_simple(DISC_UPD_DEAD, "b", 6, "c");
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_DEAD, state_of(r, "b"));
    /* suspect of a dead member: ignored; alive(6) too; alive(7) revives. */
    u = upd_simple(DISC_UPD_SUSPECT, "b", 9, "c");
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_DEAD, state_of(r, "b"));
    u = upd_alive("b", 6);
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_DEAD, state_of(r, "b"));
    /* leave of a dead member with >= incarnation: LEFT (graceful wins). */
    u = upd_simple(DISC_UPD_LEAVE, "b", 6, NULL);
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_LEFT, state_of(r, "b"));
    ASSERT_EQ(1, r->ev[DISC_EV_LEAVE]);
    /* dead of a left member: ignored. */
    u = upd_simple(DISC_UPD_DEAD, "b", 50, "c");
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_LEFT, state_of(r, "b"));
    u = upd_alive("b", 7);
    deliver(r, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(r, "b"));
    ASSERT_EQ(7, disc_member_incarnation(disc__swim_find(r->s, "b")));
    /* Unknown members: suspect/dead/leave teach nothing. */
    u = upd_simple(DISC_UPD_DEAD, "zz", 1, "c");
    deliver(r, now, &u);
    ASSERT(disc__swim_find(r->s, "zz") == NULL);
    rec_free(r);
}

TEST(swim_stale_view_of_restarted_member_repaired)
{
    uint64_t now = 1000;
    struct rec *a = rec_new("a", NULL, now);
    struct disc_update u = upd_alive("b", 5);
    deliver(a, now, &u);
    u = upd_simple(DISC_UPD_DEAD, "b", 5, "c");
    deliver(a, now, &u);
    /* b restarted (incarnation 9) and pings a, which missed its alive: the
     * ack carries a's stale verdict. */
    rec_clear(a);
    deliver_msg(a, now, "addr-b", DISC_MSG_PING, 42);
    ssize_t i = find_sent(a, DISC_MSG_ACK, "addr-b");
    ASSERT(i >= 0);
    ASSERT_EQ(42, a->pkt[i].msg.seq);
    ASSERT_EQ(DISC_UPD_DEAD, a->pkt[i].upd[0].kind);
    ASSERT_STR_EQ("b", a->pkt[i].upd[0].node);
    ASSERT_EQ(5, a->pkt[i].upd[0].inc);
    /* b re-asserts its alive (same incarnation, no refutation needed). */
    struct disc_config c = {.initial_incarnation = 9, .probe_interval_ms = 1000000};
    struct rec *b = rec_new("b", &c, now);
    u = upd_alive("a", 1);
    deliver(b, now, &u);
    run_until(b, &now, now + 2000); /* its first alive is gossiped out, then dropped */
    ASSERT_EQ(0, disc__swim_queue_len(b->s));
    disc__swim_on_packet(b->s, now, "addr-a", &a->pkt[i]);
    ASSERT_EQ(9, disc_member_incarnation(disc__swim_self(b->s)));
    ASSERT_EQ(1, disc__swim_queue_len(b->s));
    struct disc_stats st;
    disc__swim_get_stats(b->s, &st);
    ASSERT_EQ(0, st.refutations);
    rec_free(a);
    rec_free(b);
}

/* ---- leave and rejoin ---- */

TEST(swim_leave_is_left_not_dead)
{
    uint64_t now = 1000;
    struct rec *a = rec_new("a", NULL, now);
    struct rec *b = rec_new("b", NULL, now);
    add_members(a, now, 3);
    struct disc_update u = upd_alive("a", 0);
    deliver(b, now, &u);
    rec_clear(a);
    ASSERT_OK(disc__swim_leave(a->s, now));
    ASSERT_EQ(WR_ECLOSED, disc__swim_leave(a->s, now));
    ASSERT(disc__swim_has_left(a->s));
    /* Sent at once to every live member, not left to gossip. */
    ASSERT_EQ(3, a->n);
    for (size_t i = 0; i < a->n; i++) {
        ASSERT_EQ(DISC_UPD_LEAVE, a->pkt[i].upd[0].kind);
        ASSERT_STR_EQ("a", a->pkt[i].upd[0].node);
    }
    disc__swim_on_packet(b->s, now, "addr-a", &a->pkt[0]);
    ASSERT_EQ(DISC_MEMBER_ST_LEFT, state_of(b, "a"));
    ASSERT_EQ(1, b->ev[DISC_EV_LEAVE]);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, b->last_old);
    /* A leaving member stops probing and does not refute. */
    rec_clear(a);
    run_until(a, &now, now + 3000);
    ASSERT_EQ(-1, find_sent(a, DISC_MSG_PING, NULL));
    u = upd_simple(DISC_UPD_SUSPECT, "a", 10, "m00");
    deliver(a, now, &u);
    ASSERT_EQ(0, disc_member_incarnation(disc__swim_self(a->s)));
    rec_free(a);
    rec_free(b);
}

TEST(swim_rejoin_after_restart_with_higher_incarnation)
{
    uint64_t now = 1000;
    struct rec *a = rec_new("a", NULL, now);
    struct disc_update u = upd_alive("b", 5);
    deliver(a, now, &u);
    u = upd_simple(DISC_UPD_LEAVE, "b", 5, NULL);
    deliver(a, now, &u);
    ASSERT_EQ(DISC_MEMBER_ST_LEFT, state_of(a, "b"));
    /* b restarts with incarnation 0: its alive is too old to count. */
    struct rec *b = rec_new("b", NULL, now);
    rec_clear(b);
    disc__swim_announce(b->s, now, "addr-a");
    ASSERT_EQ(1, b->n);
    disc__swim_on_packet(a->s, now, "addr-b", &b->pkt[0]);
    ASSERT_EQ(DISC_MEMBER_ST_LEFT, state_of(a, "b"));
    /* a's state (push/pull) tells b it left with incarnation 5: b refutes. */
    struct disc_state st;
    ASSERT_OK(disc__swim_state_build(a->s, false, &st));
    disc__swim_state_merge(b->s, now, &st);
    disc__state_clear(&st);
    ASSERT_EQ(6, disc_member_incarnation(disc__swim_self(b->s)));
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(b, "a")); /* and b learnt a */
    ASSERT_OK(disc__swim_state_build(b->s, false, &st));
    disc__swim_state_merge(a->s, now, &st);
    disc__state_clear(&st);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(a, "b"));
    ASSERT_EQ(6, disc_member_incarnation(disc__swim_find(a->s, "b")));
    ASSERT_EQ(DISC_MEMBER_ST_LEFT, a->last_old);
    rec_free(a);
    rec_free(b);
}

TEST(swim_pushpull_merge_learns_and_suspects)
{
    uint64_t now = 1000;
    struct rec *a = rec_new("a", NULL, now);
    struct rec *b = rec_new("b", NULL, now);
    add_members(a, now, 3);
    struct disc_update u = upd_simple(DISC_UPD_SUSPECT, "m01", 1, "m02");
    deliver(a, now, &u);
    u = upd_simple(DISC_UPD_DEAD, "m02", 1, "m00");
    deliver(a, now, &u);
    struct disc_state st;
    ASSERT_OK(disc__swim_state_build(a->s, true, &st));
    ASSERT(st.join);
    ASSERT_EQ(4, st.n);
    disc__swim_state_merge(b->s, now, &st);
    disc__state_clear(&st);
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(b, "a"));
    ASSERT_EQ(DISC_MEMBER_ST_ALIVE, state_of(b, "m00"));
    ASSERT_EQ(DISC_MEMBER_ST_SUSPECT, state_of(b, "m01"));
    ASSERT(disc__swim_find(b->s, "m02") == NULL); /* dead and unknown: not learnt */
    ASSERT_EQ(3, b->ev[DISC_EV_JOIN]);
    rec_free(a);
    rec_free(b);
}

/* ---- metadata: tunnel sets ---- */

TEST(swim_tunnel_set_versioned)
{
    uint64_t now = 1000;
    struct rec *a = rec_new("a", NULL, now);
    struct rec *b = rec_new("b", NULL, now);
    struct disc_tunnel_entry e[3] = {
        {.tunnel = "wiki", .agent = "ag1", .weight = 1},
        {.tunnel = "shop", .agent = "ag2", .weight = 200},
        {.tunnel = "shop", .agent = "ag1", .weight = 255},
    };
    ASSERT_OK(disc__swim_set_tunnels(b->s, e, 3));
    ASSERT_EQ(1, disc_member_tunnels_version(disc__swim_self(b->s)));
    /* Sorted by (tunnel, agent). */
    const struct disc_tunnel_entry *t0 = disc_member_tunnel_get(disc__swim_self(b->s), 0);
    ASSERT_STR_EQ("shop", t0->tunnel);
    ASSERT_STR_EQ("ag1", t0->agent);
    rec_clear(b);
    run_until(b, &now, now + 50);
    struct disc_state st;
    ASSERT_OK(disc__swim_state_build(b->s, false, &st));
    disc__swim_state_merge(a->s, now, &st);
    disc__state_clear(&st);
    const struct disc_member *mb = disc__swim_find(a->s, "b");
    ASSERT_EQ(3, disc_member_tunnel_count(mb));
    ASSERT_EQ(1, disc_member_tunnels_version(mb));
    ASSERT_EQ(255, disc_member_tunnel_get(mb, 0)->weight);
    ASSERT(disc_member_tunnel_get(mb, 3) == NULL);
    /* A change travels with the same incarnation and a newer version. */
    ASSERT_OK(disc__swim_set_tunnels(b->s, e, 1));
    ASSERT_OK(disc__swim_state_build(b->s, false, &st));
    size_t meta0 = a->ev[DISC_EV_META];
    disc__swim_state_merge(a->s, now, &st);
    ASSERT_EQ(meta0 + 1, a->ev[DISC_EV_META]);
    /* The same state again is no change. */
    disc__swim_state_merge(a->s, now, &st);
    ASSERT_EQ(meta0 + 1, a->ev[DISC_EV_META]);
    disc__state_clear(&st);
    ASSERT_EQ(1, disc_member_tunnel_count(mb));
    ASSERT_EQ(2, disc_member_tunnels_version(mb));
    /* Invalid input is refused and changes nothing. */
    struct disc_tunnel_entry bad[2] = {{.tunnel = "x", .agent = "y", .weight = 1},
                                       {.tunnel = "x", .agent = "y", .weight = 2}};
    ASSERT_EQ(WR_EUSAGE, disc__swim_set_tunnels(b->s, bad, 2));
    bad[1].weight = 0;
    bad[1].agent[0] = 'z';
    ASSERT_EQ(WR_EUSAGE, disc__swim_set_tunnels(b->s, bad, 2));
    snprintf(bad[1].agent, sizeof(bad[1].agent), "bad id");
    bad[1].weight = 1;
    ASSERT_EQ(WR_EUSAGE, disc__swim_set_tunnels(b->s, bad, 2));
    struct disc_tunnel_entry big[DISC_MAX_TUNNEL_ENTRIES];
    for (size_t i = 0; i < DISC_MAX_TUNNEL_ENTRIES; i++) {
        snprintf(big[i].tunnel, sizeof(big[i].tunnel), "tunnel-with-a-long-name-%02zu", i);
        snprintf(big[i].agent, sizeof(big[i].agent), "agent-%02zu", i);
        big[i].weight = 1;
    }
    ASSERT_EQ(WR_ETOOBIG, disc__swim_set_tunnels(b->s, big, DISC_MAX_TUNNEL_ENTRIES));
    ASSERT_EQ(WR_ETOOBIG, disc__swim_set_tunnels(b->s, big, DISC_MAX_TUNNEL_ENTRIES + 1));
    ASSERT_EQ(2, disc_member_tunnels_version(disc__swim_self(b->s)));
    ASSERT_OK(disc__swim_set_tunnels(b->s, NULL, 0));
    ASSERT_EQ(0, disc_member_tunnel_count(disc__swim_self(b->s)));
    rec_free(a);
    rec_free(b);
    /* An observer holds no tunnels. */
    struct disc_self obs = {.id = "lb1", .role = DISC_ROLE_OBSERVER};
    static const struct disc_swim_ops ops = {.send = on_rec_send};
    struct rec *r = calloc(1, sizeof(*r));
    struct disc_config c = {0};
    r->s = disc__swim_new(&c, &obs, now, &ops, r);
    ASSERT_EQ(WR_EUSAGE, disc__swim_set_tunnels(r->s, e, 1));
    ASSERT_EQ(DISC_ROLE_OBSERVER, disc_member_role(disc__swim_self(r->s)));
    rec_free(r);
}

/* ---- the broadcast queue ---- */

TEST(swim_broadcast_queue_bounded_and_retransmit_limited)
{
    struct disc_config c = {.max_broadcasts = 8};
    uint64_t now = 1000;
    struct rec *r = rec_new("a", &c, now);
    add_members(r, now, 20);
    ASSERT_EQ(8, disc__swim_queue_len(r->s));
    struct disc_stats st;
    disc__swim_get_stats(r->s, &st);
    ASSERT_EQ(13, st.queue_drops); /* 1 self alive + 20 joins into 8 slots */
    /* Gossip until the queue drains: each update goes out at most limit times. */
    uint32_t limit = disc__swim_retransmit_limit(r->s);
    rec_clear(r);
    for (int round = 0; round < 200 && disc__swim_queue_len(r->s) > 0; round++) {
        run_until(r, &now, now + 100);
        for (size_t i = 0; i < r->n; i++)
            if (r->pkt[i].msg.type == DISC_MSG_ACK)
                ASSERT(0);
        if (r->n > REC_MAX - 40) {
            /* Count before clearing. */
            rec_clear(r);
        }
    }
    ASSERT_EQ(0, disc__swim_queue_len(r->s));
    rec_free(r);
    /* Exact counting on a fresh machine that does not probe: one update, n = 2. */
    struct disc_config quiet = {.probe_interval_ms = 1000000};
    r = rec_new("a", &quiet, now);
    struct disc_update u = upd_alive("b", 1);
    deliver(r, now, &u);
    limit = disc__swim_retransmit_limit(r->s);
    rec_clear(r);
    size_t sends_of_b = 0;
    for (int round = 0; round < 100; round++) {
        run_until(r, &now, now + 100);
        for (size_t i = 0; i < r->n; i++)
            for (uint32_t j = 0; j < r->pkt[i].n_updates; j++)
                sends_of_b += strcmp(r->pkt[i].upd[j].node, "b") == 0;
        rec_clear(r);
    }
    ASSERT_EQ(limit, sends_of_b);
    rec_free(r);
}

TEST(swim_piggyback_respects_packet_size)
{
    struct disc_config c = {.packet_max = 600};
    uint64_t now = 1000;
    struct rec *r = rec_new("a", &c, now);
    for (int i = 0; i < 40; i++) {
        char id[WR_ID_MAX + 1];
        snprintf(id, sizeof(id), "member-with-a-fairly-long-identifier-%02d", i);
        struct disc_update u = upd_alive(id, 1);
        snprintf(u.addr[DISC_ADDR_TUNNEL], DISC_ADDR_MAX, "[2001:db8::%d]:443", i);
        snprintf(u.addr[DISC_ADDR_PEER], DISC_ADDR_MAX, "[2001:db8::%d]:444", i);
        deliver(r, now, &u);
    }
    rec_clear(r);
    run_until(r, &now, now + 1000);
    ASSERT(r->n > 0);
    for (size_t i = 0; i < r->n; i++) {
        struct wr_buf b = {0};
        ASSERT_OK(disc__codec_packet_encode(&r->pkt[i], &b));
        ASSERT_LE(b.len + DISC_SEAL_OVERHEAD, 600);
        ASSERT_GE(r->pkt[i].n_updates, 1);
        wr_buf_free(&b);
    }
    rec_free(r);
}

TEST(swim_dead_members_reaped)
{
    struct disc_config c = {.reap_ms = 5000};
    uint64_t now = 1000;
    struct rec *r = rec_new("a", &c, now);
    add_members(r, now, 2);
    struct disc_update u = upd_simple(DISC_UPD_DEAD, "m00", 1, "m01");
    deliver(r, now, &u);
    run_until(r, &now, now + 4000);
    ASSERT(disc__swim_find(r->s, "m00") != NULL);
    run_until(r, &now, now + 1600);
    ASSERT(disc__swim_find(r->s, "m00") == NULL);
    ASSERT_EQ(1, r->ev[DISC_EV_REAP]);
    ASSERT_EQ(2, disc__swim_member_count(r->s));
    rec_free(r);
}

TEST(swim_misdirected_ping_not_acked)
{
    uint64_t now = 1000;
    struct rec *r = rec_new("a", NULL, now);
    static struct disc_packet p;
    memset(&p, 0, sizeof(p));
    p.msg = (struct disc_msg){.type = DISC_MSG_PING, .seq = 3, .target = "someone-else"};
    disc__swim_on_packet(r->s, now, "addr-x", &p);
    ASSERT_EQ(-1, find_sent(r, DISC_MSG_ACK, NULL));
    p.msg.target[0] = '\0'; /* a join ping: whoever is there answers */
    disc__swim_on_packet(r->s, now, "addr-x", &p);
    ASSERT(find_sent(r, DISC_MSG_ACK, "addr-x") >= 0);
    rec_free(r);
}

/* ---- a simulated network of machines ---- */

#define SIM_N 32
#define SIM_QMAX 65536

struct sim_pkt {
    int from, to;
    struct wr_buf bytes;
};

struct sim {
    struct disc_swim *node[SIM_N];
    bool down[SIM_N];
    int n;
    uint64_t now;
    struct sim_pkt *q;
    size_t qhead, qtail;
    int pp_from[SIM_N * 4], pp_to[SIM_N * 4];
    size_t n_pp;
    int cur; /* the machine whose callback is running */
    uint64_t bytes;
};

struct sim_ctx {
    struct sim *sim;
    int idx;
};

static struct sim_ctx sim_ctx[SIM_N];

static int sim_index(const char *addr)
{
    int i;
    if (sscanf(addr, "sim-%d", &i) != 1 || i < 0 || i >= SIM_N)
        return -1;
    return i;
}

static void on_sim_send(void *arg, const char *addr, const struct disc_packet *p)
{
    struct sim_ctx *c = arg;
    struct sim *sim = c->sim;
    int to = sim_index(addr);
    if (to < 0 || sim->qtail - sim->qhead >= SIM_QMAX)
        return;
    struct sim_pkt *sp = &sim->q[sim->qtail++ % SIM_QMAX];
    sp->from = c->idx;
    sp->to = to;
    memset(&sp->bytes, 0, sizeof(sp->bytes));
    ASSERT_OK(disc__codec_packet_encode(p, &sp->bytes));
    sim->bytes += sp->bytes.len + DISC_SEAL_OVERHEAD;
}

static void on_sim_pushpull(void *arg, const char *addr)
{
    struct sim_ctx *c = arg;
    struct sim *sim = c->sim;
    int to = sim_index(addr);
    if (to >= 0 && sim->n_pp < WR_ARRAY_LEN(sim->pp_from)) {
        sim->pp_from[sim->n_pp] = c->idx;
        sim->pp_to[sim->n_pp++] = to;
    }
}

static void sim_pushpull(struct sim *sim, int a, int b)
{
    struct disc_state sa, sb;
    if (sim->down[a] || sim->down[b])
        return;
    ASSERT_OK(disc__swim_state_build(sim->node[a], true, &sa));
    ASSERT_OK(disc__swim_state_build(sim->node[b], false, &sb));
    disc__swim_state_merge(sim->node[b], sim->now, &sa);
    disc__swim_state_merge(sim->node[a], sim->now, &sb);
    disc__state_clear(&sa);
    disc__state_clear(&sb);
}

static void sim_start(struct sim *sim, int i)
{
    static const struct disc_swim_ops ops = {.send = on_sim_send, .pushpull = on_sim_pushpull};
    struct disc_self self = {0};
    struct disc_config c = {.initial_incarnation = sim->now};
    snprintf(self.id, sizeof(self.id), "n%02d", i);
    snprintf(self.addr[DISC_ADDR_GOSSIP], DISC_ADDR_MAX, "sim-%d", i);
    sim_ctx[i] = (struct sim_ctx){sim, i};
    sim->node[i] = disc__swim_new(&c, &self, sim->now, &ops, &sim_ctx[i]);
    ASSERT(sim->node[i] != NULL);
    sim->down[i] = false;
}

static void sim_init(struct sim *sim, int n)
{
    memset(sim, 0, sizeof(*sim));
    sim->q = calloc(SIM_QMAX, sizeof(sim->q[0]));
    sim->n = n;
    sim->now = 100000;
    for (int i = 0; i < n; i++)
        sim_start(sim, i);
    /* Everyone joins through n00: announce, then a join push/pull. */
    for (int i = 1; i < n; i++) {
        disc__swim_announce(sim->node[i], sim->now, "sim-0");
        sim_pushpull(sim, i, 0);
    }
}

static void sim_drain(struct sim *sim)
{
    static struct disc_packet p;
    while (sim->qhead < sim->qtail || sim->n_pp > 0) {
        while (sim->n_pp > 0) {
            sim->n_pp--;
            sim_pushpull(sim, sim->pp_from[sim->n_pp], sim->pp_to[sim->n_pp]);
        }
        if (sim->qhead == sim->qtail)
            break;
        struct sim_pkt sp = sim->q[sim->qhead++ % SIM_QMAX];
        if (!sim->down[sp.to] && !sim->down[sp.from]) {
            ASSERT_OK(disc__codec_packet_decode(wr_buf_peek(&sp.bytes), &p, NULL));
            char from[DISC_ADDR_MAX];
            snprintf(from, sizeof(from), "sim-%d", sp.from);
            disc__swim_on_packet(sim->node[sp.to], sim->now, from, &p);
            disc__packet_clear(&p);
        }
        wr_buf_free(&sp.bytes);
    }
}

/* Advances 10 ms of synthetic time (packets arrive within the step). */
static void sim_step(struct sim *sim)
{
    sim->now += 10;
    for (int i = 0; i < sim->n; i++)
        if (!sim->down[i] && disc__swim_next_deadline(sim->node[i]) <= sim->now)
            disc__swim_tick(sim->node[i], sim->now);
    sim_drain(sim);
}

/* Do all up members see member <id> in state <st>? (absent counts as not) */
static bool sim_all_see(struct sim *sim, const char *id, enum disc_member_state st)
{
    for (int i = 0; i < sim->n; i++) {
        if (sim->down[i])
            continue;
        const struct disc_member *m = disc__swim_find(sim->node[i], id);
        if (m == NULL || disc_member_get_state(m) != st)
            return false;
    }
    return true;
}

static bool sim_converged(struct sim *sim)
{
    for (int i = 0; i < sim->n; i++) {
        if (sim->down[i])
            continue;
        struct disc_stats st;
        disc__swim_get_stats(sim->node[i], &st);
        if (st.members[DISC_MEMBER_ST_ALIVE] != (uint64_t)sim->n)
            return false;
    }
    return true;
}

static void sim_dump(struct sim *sim)
{
    for (int i = 0; i < sim->n; i++) {
        struct disc_stats st;
        if (sim->down[i])
            continue;
        disc__swim_get_stats(sim->node[i], &st);
        if (st.members[DISC_MEMBER_ST_ALIVE] != (uint64_t)sim->n)
            fprintf(stderr, "n%02d: alive=%llu suspect=%llu dead=%llu left=%llu\n", i,
                    (unsigned long long)st.members[0], (unsigned long long)st.members[1],
                    (unsigned long long)st.members[2], (unsigned long long)st.members[3]);
    }
}

static void sim_free(struct sim *sim)
{
    sim_drain(sim);
    for (int i = 0; i < sim->n; i++)
        disc__swim_free(sim->node[i]);
    while (sim->qhead < sim->qtail)
        wr_buf_free(&sim->q[sim->qhead++ % SIM_QMAX].bytes);
    free(sim->q);
}

TEST(swim_sim_32_converge_fail_leave)
{
    static struct sim sim;
    wr_log_level_cur = WR_LOG_WARN;
    sim_init(&sim, SIM_N);
    sim_drain(&sim);
    uint64_t t0 = sim.now;
    while (!sim_converged(&sim) && sim.now < t0 + 5000)
        sim_step(&sim);
    ASSERT(sim_converged(&sim));
    printf("converged in %llu ms\n", (unsigned long long)(sim.now - t0));
    /* Let the join gossip settle, then measure idle traffic. */
    for (int i = 0; i < 500; i++)
        sim_step(&sim);
    uint64_t b0 = sim.bytes, ti = sim.now;
    for (int i = 0; i < 1000; i++) /* 10 s */
        sim_step(&sim);
    uint64_t idle = (sim.bytes - b0) * 1000 / (sim.now - ti) / SIM_N;
    printf("idle: %llu B/s sent per node (sealed sizes)\n", (unsigned long long)idle);
    ASSERT_LE(idle, 450);
    ASSERT(sim_converged(&sim)); /* no false positive on a quiet network */

    /* Failure: n05 stops answering (closed without leave). */
    sim.down[5] = true;
    uint64_t tf = sim.now;
    while (!sim_all_see(&sim, "n05", DISC_MEMBER_ST_DEAD) && sim.now < tf + 30000)
        sim_step(&sim);
    ASSERT(sim_all_see(&sim, "n05", DISC_MEMBER_ST_DEAD));
    printf("failure seen by all in %llu ms\n", (unsigned long long)(sim.now - tf));
    ASSERT_LE(sim.now - tf, 8000);

    /* Graceful leave: n07 leaves, everyone sees LEFT fast (not DEAD). */
    uint64_t tl = sim.now;
    ASSERT_OK(disc__swim_leave(sim.node[7], sim.now));
    sim_drain(&sim);
    while (!sim_all_see(&sim, "n07", DISC_MEMBER_ST_LEFT) && sim.now < tl + 5000)
        sim_step(&sim);
    ASSERT(sim_all_see(&sim, "n07", DISC_MEMBER_ST_LEFT));
    printf("leave seen by all in %llu ms\n", (unsigned long long)(sim.now - tl));
    ASSERT_LE(sim.now - tl, 500);
    sim.down[7] = true; /* the process that left exits */

    /* n05 restarts (new incarnation from the clock) and rejoins. */
    disc__swim_free(sim.node[5]);
    sim.now += 1000;
    sim_start(&sim, 5);
    disc__swim_announce(sim.node[5], sim.now, "sim-0");
    sim_pushpull(&sim, 5, 0);
    uint64_t tr = sim.now;
    while (!sim_all_see(&sim, "n05", DISC_MEMBER_ST_ALIVE) && sim.now < tr + 5000)
        sim_step(&sim);
    if (!sim_all_see(&sim, "n05", DISC_MEMBER_ST_ALIVE)) {
        for (int i = 0; i < sim.n; i++) {
            const struct disc_member *m = disc__swim_find(sim.node[i], "n05");
            if (!sim.down[i] && (m == NULL || disc_member_get_state(m) != DISC_MEMBER_ST_ALIVE))
                fprintf(stderr, "n%02d sees n05 %s inc=%llu (new inc %llu)\n", i,
                        m ? disc_member_state_str(disc_member_get_state(m)) : "absent",
                        m ? (unsigned long long)disc_member_incarnation(m) : 0ull,
                        (unsigned long long)disc_member_incarnation(disc__swim_self(sim.node[5])));
        }
    }
    ASSERT(sim_all_see(&sim, "n05", DISC_MEMBER_ST_ALIVE));
    printf("rejoin seen by all in %llu ms\n", (unsigned long long)(sim.now - tr));
    sim_free(&sim);
}

TEST(swim_sim_detection_median_n32)
{
    /* Failure detection over several runs, with no false positive. The
     * random probe order makes the figures vary from run to run (the issue's
     * 4 s target is measured by warren-bench gossip, not here): the bound is
     * what the confirmations must bring it under, as a lone suspicion would
     * take the maximum timeout (4 x 3 x log10(32) x 500 ms = 9 s) and more. */
    static struct sim sim;
    uint64_t t[5];
    wr_log_level_cur = WR_LOG_WARN;
    for (int run = 0; run < 5; run++) {
        sim_init(&sim, SIM_N);
        sim_drain(&sim);
        for (int i = 0; i < 300; i++)
            sim_step(&sim);
        if (!sim_converged(&sim))
            sim_dump(&sim);
        ASSERT(sim_converged(&sim));
        int victim = 1 + run * 3;
        char id[8];
        snprintf(id, sizeof(id), "n%02d", victim);
        sim.down[victim] = true;
        uint64_t tf = sim.now;
        while (!sim_all_see(&sim, id, DISC_MEMBER_ST_DEAD) && sim.now < tf + 30000)
            sim_step(&sim);
        ASSERT(sim_all_see(&sim, id, DISC_MEMBER_ST_DEAD));
        t[run] = sim.now - tf;
        for (int i = 0; i < sim.n; i++) {
            if (i == victim)
                continue;
            struct disc_stats st;
            disc__swim_get_stats(sim.node[i], &st);
            ASSERT_EQ(sim.n - 1, st.members[DISC_MEMBER_ST_ALIVE]); /* nobody else died */
        }
        sim_free(&sim);
    }
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (t[j] < t[i]) {
                uint64_t x = t[i];
                t[i] = t[j];
                t[j] = x;
            }
    printf("detection ms: %llu %llu %llu %llu %llu\n", (unsigned long long)t[0],
           (unsigned long long)t[1], (unsigned long long)t[2], (unsigned long long)t[3],
           (unsigned long long)t[4]);
    ASSERT_LE(t[2], 6000);
}

TEST_MAIN(TEST_ENTRY(swim_suspicion_timeout_scales_with_n),
          TEST_ENTRY(swim_confirmations_shrink_timeout_formula),
          TEST_ENTRY(swim_retransmit_limit_scales_with_n), TEST_ENTRY(swim_probe_ack_keeps_alive),
          TEST_ENTRY(swim_indirect_probe_ack_through_helper),
          TEST_ENTRY(swim_relay_ping_req_ack_and_nack),
          TEST_ENTRY(swim_failed_probe_suspects_then_dead),
          TEST_ENTRY(swim_confirmations_shorten_suspicion),
          TEST_ENTRY(swim_awareness_slows_a_struggling_member),
          TEST_ENTRY(swim_refutes_suspicion_about_self), TEST_ENTRY(swim_incarnation_ordering),
          TEST_ENTRY(swim_leave_is_left_not_dead),
          TEST_ENTRY(swim_rejoin_after_restart_with_higher_incarnation),
          TEST_ENTRY(swim_stale_view_of_restarted_member_repaired),
          TEST_ENTRY(swim_pushpull_merge_learns_and_suspects),
          TEST_ENTRY(swim_tunnel_set_versioned),
          TEST_ENTRY(swim_broadcast_queue_bounded_and_retransmit_limited),
          TEST_ENTRY(swim_piggyback_respects_packet_size), TEST_ENTRY(swim_dead_members_reaped),
          TEST_ENTRY(swim_misdirected_ping_not_acked), TEST_ENTRY(swim_sim_32_converge_fail_leave),
          TEST_ENTRY(swim_sim_detection_median_n32))
