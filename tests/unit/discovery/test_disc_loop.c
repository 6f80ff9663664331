/*
 * test_disc_loop.c: the libuv driver (disc_cluster.c) in-process: members on
 * 127.0.0.1 ephemeral ports in one loop, real UDP and TCP, sealed packets.
 * They converge through one seed; a member closed without leaving is found
 * dead; a member that leaves is seen LEFT; a restarted member is alive again;
 * a member with the wrong key cannot join and its packets are counted as
 * rejected; the key is rotated across the live members. Timers are shortened so the test runs in
 * seconds; conditions are polled with deadlines, never slept on.
 */
/* link: disc_lib_int */
#include "test.h"

#include <uv.h>

#include "disc.h"
#include "wr/addr.h"
#include "wr/crypto.h"
#include "wr/log.h"

#define N 4

struct node {
    struct disc_cluster *c;
    size_t ev[DISC_EV__COUNT];
    bool closed;
};

static struct node nodes[N + 2];
static uv_loop_t loop;

static void on_event(void *arg, enum disc_event_type ev, const struct disc_member *m,
                     enum disc_member_state old)
{
    struct node *n = arg;
    (void)m;
    (void)old;
    n->ev[ev]++;
}

static void on_closed(void *arg)
{
    ((struct node *)arg)->closed = true;
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes the loop up */
}

typedef bool (*pred_fn)(void *arg);

/* Runs the loop until <pred> holds or <ms> pass. */
static bool run_until(pred_fn pred, void *arg, uint64_t ms)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    uv_update_time(&loop);
    uint64_t deadline = uv_now(&loop) + ms;
    bool ok = pred(arg);
    while (!ok && uv_now(&loop) < deadline) {
        uv_run(&loop, UV_RUN_ONCE);
        ok = pred(arg);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static const uint8_t key_good[DISC_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t key_bad[DISC_KEY_LEN] = {9, 9, 9};
static const uint8_t key_new[DISC_KEY_LEN] = {42, 42, 42, 42};

/* Starts member <i> bound to <bind>; <reap_ms> 0 keeps the default. */
static void start_on(int i, const char *id, const uint8_t *key, const char *bind, uint32_t reap_ms)
{
    struct disc_cluster_config cfg = {0};
    memset(&nodes[i], 0, sizeof(nodes[i]));
    /* Fast timers: the test is about the plumbing, the machine's timing is
     * checked in test_disc_swim. */
    cfg.swim.probe_interval_ms = 100;
    cfg.swim.probe_timeout_ms = 40;
    cfg.swim.gossip_interval_ms = 20;
    cfg.swim.pushpull_interval_ms = 2000;
    snprintf(cfg.self.id, sizeof(cfg.self.id), "%s", id);
    snprintf(cfg.self.addr[DISC_ADDR_TUNNEL], DISC_ADDR_MAX, "127.0.0.1:%d", 8000 + i);
    cfg.swim.reap_ms = reap_ms;
    cfg.swim.reconnect_interval_ms = reap_ms > 0 ? 200 : 0;
    cfg.bind = bind;
    cfg.event_cb = on_event;
    cfg.event_arg = &nodes[i];
    cfg.join_backoff_min_ms = 50;
    cfg.join_backoff_max_ms = 400;
    struct disc_keyring *kr = disc_keyring_new(key);
    ASSERT(kr != NULL);
    ASSERT_OK(disc_cluster_start(&loop, &cfg, kr, &nodes[i].c));
}

static void start(int i, const char *id, const uint8_t *key)
{
    start_on(i, id, key, "127.0.0.1:0", 0);
}

static void join(int i, int seed)
{
    const char *addrs[1] = {disc_cluster_addr(nodes[seed].c)};
    ASSERT_OK(disc_cluster_join(nodes[i].c, addrs, 1));
}

static void stop(int i)
{
    disc_cluster_close(nodes[i].c, on_closed, &nodes[i]);
    nodes[i].c = NULL;
}

/* Every running member among the first N sees <id> in <st>. */
struct see {
    const char *id;
    enum disc_member_state st;
};

static bool pred_all_see(void *arg)
{
    const struct see *s = arg;
    for (int i = 0; i < N; i++) {
        if (nodes[i].c == NULL)
            continue;
        const struct disc_member *m = disc_cluster_find(nodes[i].c, s->id);
        if (m == NULL || disc_member_get_state(m) != s->st)
            return false;
    }
    return true;
}

static bool pred_converged(void *arg)
{
    (void)arg;
    static const char *ids[N] = {"n0", "n1", "n2", "n3"};
    for (int j = 0; j < N; j++) {
        struct see s = {ids[j], DISC_MEMBER_ST_ALIVE};
        if (!pred_all_see(&s))
            return false;
    }
    return true;
}

static bool pred_rejected(void *arg)
{
    (void)arg;
    struct disc_stats st;
    disc_cluster_get_stats(nodes[0].c, &st);
    return st.decrypt_failures >= 3;
}

static bool pred_rejected_more(void *arg)
{
    const struct disc_stats *before = arg;
    struct disc_stats st;
    disc_cluster_get_stats(nodes[0].c, &st);
    return st.decrypt_failures >= before->decrypt_failures + 3;
}

static bool pred_tunnels(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        if (disc_member_tunnel_count(disc_cluster_find(nodes[i].c, "n1")) != 1)
            return false;
    return true;
}

static void on_closed_flag(void *arg)
{
    *(bool *)arg = true;
}

TEST(loop_cluster_converge_fail_leave_rejoin_wrong_key)
{
    ASSERT_OK(wr_crypto_init());
    wr_log_level_cur = WR_LOG_WARN;
    ASSERT_OK(uv_loop_init(&loop));
    static const char *ids[N] = {"n0", "n1", "n2", "n3"};
    for (int i = 0; i < N; i++)
        start(i, ids[i], key_good);
    for (int i = 1; i < N; i++)
        join(i, 0);
    ASSERT(run_until(pred_converged, NULL, 10000));
    for (int i = 0; i < N; i++)
        ASSERT(disc_cluster_is_joined(nodes[i].c));
    /* Metadata traveled: n1's tunnel address as n2 sees it. */
    const struct disc_member *m1 = disc_cluster_find(nodes[2].c, "n1");
    ASSERT_STR_EQ("127.0.0.1:8001", disc_member_addr(m1, DISC_ADDR_TUNNEL));
    ASSERT_EQ(3, nodes[0].ev[DISC_EV_JOIN]);

    /* A tunnel set published by n1 reaches the others. */
    struct disc_tunnel_entry e = {.tunnel = "shop", .agent = "agent-1", .weight = 10};
    ASSERT_OK(disc_cluster_set_tunnels(nodes[1].c, &e, 1));
    ASSERT(run_until(pred_tunnels, NULL, 5000));
    ASSERT_EQ(1, disc_member_tunnel_count(disc_cluster_find(nodes[3].c, "n1")));
    ASSERT_STR_EQ("shop", disc_member_tunnel_get(disc_cluster_find(nodes[3].c, "n1"), 0)->tunnel);

    /* n3 stops without a word: the others find it dead. */
    stop(3);
    struct see dead3 = {"n3", DISC_MEMBER_ST_DEAD};
    ASSERT(run_until(pred_all_see, &dead3, 15000));

    /* n2 leaves: the others see LEFT, not DEAD. */
    ASSERT_OK(disc_cluster_leave(nodes[2].c));
    ASSERT_EQ(WR_ECLOSED, disc_cluster_leave(nodes[2].c));
    struct see left2 = {"n2", DISC_MEMBER_ST_LEFT};
    struct disc_cluster *leaver = nodes[2].c;
    nodes[2].c = NULL; /* not a watcher any more */
    bool ok = run_until(pred_all_see, &left2, 5000);
    nodes[2].c = leaver;
    stop(2);
    ASSERT(ok);
    ASSERT_GE(nodes[0].ev[DISC_EV_LEAVE], 1);

    /* n3 restarts (same id, fresh process state) and is alive again. */
    start(3, "n3", key_good);
    join(3, 1);
    struct see alive3 = {"n3", DISC_MEMBER_ST_ALIVE};
    ASSERT(run_until(pred_all_see, &alive3, 10000));

    /* A member with the wrong key cannot join; its packets are rejected. */
    start(4, "intruder", key_bad);
    join(4, 0);
    ASSERT(run_until(pred_rejected, NULL, 10000));
    ASSERT(!disc_cluster_is_joined(nodes[4].c));
    ASSERT(disc_cluster_find(nodes[0].c, "intruder") == NULL);
    ASSERT_EQ(1, disc_cluster_member_count(nodes[4].c));
    struct disc_stats st;
    disc_cluster_get_stats(nodes[4].c, &st);
    ASSERT_GE(st.pushpull_failures, 1);

    stop(4);

    /* Key rotation across the live cluster (n0, n1, n3): install the new key
     * everywhere, make it primary everywhere, remove the old one. */
    static const int live[3] = {0, 1, 3};
    for (int i = 0; i < 3; i++)
        ASSERT_OK(disc_keyring_install(disc_cluster_keyring(nodes[live[i]].c), key_new));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(disc_keyring_use(disc_cluster_keyring(nodes[live[i]].c), key_new));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(disc_keyring_remove(disc_cluster_keyring(nodes[live[i]].c), key_good));
        ASSERT_EQ(1, disc_keyring_count(disc_cluster_keyring(nodes[live[i]].c)));
    }
    /* A newcomer with the new key joins; one with the old key does not. */
    start(5, "n5", key_new);
    join(5, 3);
    struct see alive5 = {"n5", DISC_MEMBER_ST_ALIVE};
    ASSERT(run_until(pred_all_see, &alive5, 10000));
    start(4, "old-key", key_good);
    join(4, 0);
    struct disc_stats before;
    disc_cluster_get_stats(nodes[0].c, &before);
    ASSERT(run_until(pred_rejected_more, &before, 10000));
    ASSERT(!disc_cluster_is_joined(nodes[4].c));
    /* Nobody was lost on the way. */
    struct see still1 = {"n1", DISC_MEMBER_ST_ALIVE};
    ASSERT(pred_all_see(&still1));

    for (int i = 0; i < N + 2; i++)
        if (nodes[i].c != NULL)
            stop(i);
    for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < N + 2; i++)
        ASSERT(nodes[i].closed);
    ASSERT_EQ(0, uv_loop_close(&loop));
}

static bool pred_alone(void *arg)
{
    return disc_cluster_member_count(nodes[*(int *)arg].c) == 1;
}

/*
 * A member whose only peer died and was reaped is alone; when the peer comes
 * back at its seed address (without joining anyone), the lone member dials
 * its seeds again and they find each other. Without the rejoin they would
 * stay two clusters of one: nothing else remembers the address.
 */
TEST(loop_rejoin_seeds_when_alone)
{
    ASSERT_OK(wr_crypto_init());
    wr_log_level_cur = WR_LOG_WARN;
    ASSERT_OK(uv_loop_init(&loop));
    start_on(1, "n1", key_good, "127.0.0.1:0", 400);
    char seed[WR_ADDR_STRLEN];
    snprintf(seed, sizeof(seed), "%s", disc_cluster_addr(nodes[1].c));
    start_on(0, "n0", key_good, "127.0.0.1:0", 400);
    join(0, 1);
    struct see alive1 = {"n1", DISC_MEMBER_ST_ALIVE};
    ASSERT(run_until(pred_all_see, &alive1, 5000));

    stop(1);
    int zero = 0;
    ASSERT(run_until(pred_alone, &zero, 10000));
    ASSERT(disc_cluster_find(nodes[0].c, "n1") == NULL);

    start_on(1, "n1", key_good, seed, 400);
    ASSERT(run_until(pred_all_see, &alive1, 10000));
    int one = 1;
    ASSERT(!pred_alone(&one));

    stop(0);
    stop(1);
    for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT(nodes[0].closed && nodes[1].closed);
    ASSERT_EQ(0, uv_loop_close(&loop));
}

static void count_rejoins(void *arg, enum wr_log_level lvl, const char *ev, const char *kv)
{
    (void)lvl;
    (void)kv;
    if (strcmp(ev, "rejoin") == 0)
        ++*(int *)arg;
}

static bool pred_never(void *arg)
{
    (void)arg;
    return false;
}

/* With the default reconnect interval (5 s, left at 0 in the config), a
 * member alone with a dead seed dials it once per interval, not on every
 * timer tick. */
TEST(loop_rejoin_waits_the_interval)
{
    ASSERT_OK(wr_crypto_init());
    wr_log_level_cur = WR_LOG_INFO;
    ASSERT_OK(uv_loop_init(&loop));
    int rejoins = 0;
    struct disc_cluster_config cfg = {0};
    cfg.swim.probe_interval_ms = 20; /* many ticks */
    cfg.swim.log_cb = count_rejoins;
    cfg.swim.log_arg = &rejoins;
    snprintf(cfg.self.id, sizeof(cfg.self.id), "alone");
    cfg.bind = "127.0.0.1:0";
    struct disc_keyring *kr = disc_keyring_new(key_good);
    ASSERT_OK(disc_cluster_start(&loop, &cfg, kr, &nodes[0].c));
    memset(&nodes[0].ev, 0, sizeof(nodes[0].ev));
    /* A seed nobody listens on; "joined" is what a past join would have set:
     * reach it through a member that then goes away. */
    start(1, "peer", key_good);
    join(0, 1);
    struct see alive = {"peer", DISC_MEMBER_ST_ALIVE};
    ASSERT(run_until(pred_all_see, &alive, 5000));
    stop(1);
    run_until(pred_never, NULL, 3000);
    /* The peer is suspected, then dead within ~1 s; then one rejoin round
     * at most in the remaining 2 s (the next comes 5 s later). */
    ASSERT_LE(rejoins, 1);
    stop(0);
    for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ(0, uv_loop_close(&loop));
    wr_log_level_cur = WR_LOG_WARN;
}

TEST(loop_start_rejects_bad_config)
{
    ASSERT_OK(wr_crypto_init());
    ASSERT_OK(uv_loop_init(&loop));
    struct disc_cluster_config cfg = {0};
    struct disc_cluster *c = NULL;
    snprintf(cfg.self.id, sizeof(cfg.self.id), "ok");
    ASSERT_EQ(WR_EUSAGE, disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &c));
    cfg.bind = "not-an-address";
    ASSERT_EQ(WR_EUSAGE, disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &c));
    cfg.bind = "127.0.0.1:0";
    snprintf(cfg.self.id, sizeof(cfg.self.id), "bad id");
    ASSERT_EQ(WR_EUSAGE, disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &c));
    ASSERT(c == NULL);
    snprintf(cfg.self.id, sizeof(cfg.self.id), "good");
    ASSERT_OK(disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &c));
    const char *none[1] = {"nowhere"};
    ASSERT_EQ(WR_EUSAGE, disc_cluster_join(c, none, 1));
    ASSERT_EQ(WR_EUSAGE, disc_cluster_join(c, none, 0));
    bool closed = false;
    disc_cluster_close(c, on_closed_flag, &closed);
    disc_cluster_close(c, on_closed_flag, &closed); /* idempotent */
    ASSERT(!closed);                                /* never synchronously */
    while (uv_loop_alive(&loop))
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT(closed);
    ASSERT_EQ(0, uv_loop_close(&loop));
}

/* ---- hostile input on the sockets ---- */

struct raw {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uint8_t bytes[8];
    size_t len;
    bool eof; /* the member closed on us */
    bool closed;
};

static void on_raw_closed(uv_handle_t *h)
{
    ((struct raw *)h->data)->closed = true;
}

static void on_raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char sink[256];
    (void)h;
    (void)hint;
    *buf = uv_buf_init(sink, sizeof(sink));
}

static void on_raw_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct raw *r = s->data;
    (void)buf;
    if (nread < 0 && !r->eof) {
        r->eof = true;
        uv_close((uv_handle_t *)&r->tcp, on_raw_closed);
    }
}

static void on_raw_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void on_raw_connected(uv_connect_t *req, int status)
{
    struct raw *r = req->data;
    ASSERT_OK(status);
    if (r->len > 0) {
        uv_buf_t b = uv_buf_init((char *)r->bytes, (unsigned)r->len);
        ASSERT_OK(uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_raw_written));
    }
    ASSERT_OK(uv_read_start((uv_stream_t *)&r->tcp, on_raw_alloc, on_raw_read));
}

static void raw_dial(struct raw *r, const char *addr, const uint8_t *bytes, size_t len)
{
    struct sockaddr_storage ss;
    memset(r, 0, sizeof(*r));
    if (len > 0)
        memcpy(r->bytes, bytes, len);
    r->len = len;
    ASSERT_OK(wr_addr_parse(addr, &ss));
    ASSERT_OK(uv_tcp_init(&loop, &r->tcp));
    r->tcp.data = r;
    r->connect.data = r;
    ASSERT_OK(uv_tcp_connect(&r->connect, &r->tcp, (const struct sockaddr *)&ss, on_raw_connected));
}

static bool pred_raw_closed(void *arg)
{
    return ((struct raw *)arg)->closed;
}

struct stat_want {
    struct disc_cluster *c;
    uint64_t decrypt, decode, failures;
};

static bool pred_stats(void *arg)
{
    const struct stat_want *w = arg;
    struct disc_stats st;
    disc_cluster_get_stats(w->c, &st);
    return st.decrypt_failures >= w->decrypt && st.decode_failures >= w->decode &&
           st.pushpull_failures >= w->failures;
}

static void on_udp_sent(uv_udp_send_t *req, int status)
{
    (void)req;
    (void)status;
}

TEST(loop_hostile_input_dropped_and_counted)
{
    ASSERT_OK(wr_crypto_init());
    wr_log_level_cur = WR_LOG_WARN;
    ASSERT_OK(uv_loop_init(&loop));
    struct disc_cluster_config cfg = {0};
    struct disc_cluster *c = NULL;
    snprintf(cfg.self.id, sizeof(cfg.self.id), "target");
    cfg.bind = "127.0.0.1:0";
    cfg.tcp_timeout_ms = 200;
    ASSERT_OK(disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &c));
    struct sockaddr_storage ss;
    ASSERT_OK(wr_addr_parse(disc_cluster_addr(c), &ss));

    /* UDP: garbage, a short datagram, a right-looking header with a forged
     * tag: all dropped before any parsing, all counted. */
    uv_udp_t udp;
    uv_udp_send_t sends[3];
    static uint8_t junk[3][64];
    static const size_t lens[3] = {64, 3, 64};
    ASSERT_OK(uv_udp_init(&loop, &udp));
    for (int i = 0; i < 3; i++) {
        wr_random_bytes(junk[i], sizeof(junk[i]));
        if (i == 2)
            junk[i][0] = 1; /* the version byte */
        uv_buf_t b = uv_buf_init((char *)junk[i], (unsigned)lens[i]);
        ASSERT_OK(uv_udp_send(&sends[i], &udp, &b, 1, (const struct sockaddr *)&ss, on_udp_sent));
    }
    struct stat_want w = {c, 3, 0, 0};
    ASSERT(run_until(pred_stats, &w, 5000));

    /* TCP: a frame length beyond the limit is refused at once. */
    struct raw r1;
    static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    raw_dial(&r1, disc_cluster_addr(c), huge, sizeof(huge));
    ASSERT(run_until(pred_raw_closed, &r1, 5000));
    w = (struct stat_want){c, 3, 1, 1};
    ASSERT(run_until(pred_stats, &w, 5000));
    /* A frame that does not authenticate. */
    struct raw r2;
    static const uint8_t small[8] = {0, 0, 0, 4, 1, 2, 3, 4};
    raw_dial(&r2, disc_cluster_addr(c), small, sizeof(small));
    ASSERT(run_until(pred_raw_closed, &r2, 5000));
    /* A silent client is cut off by the timeout. */
    struct raw r3;
    raw_dial(&r3, disc_cluster_addr(c), NULL, 0);
    ASSERT(run_until(pred_raw_closed, &r3, 5000));
    w = (struct stat_want){c, 3, 2, 3};
    ASSERT(run_until(pred_stats, &w, 5000));
    /* Nothing was learnt, nobody joined. */
    ASSERT_EQ(1, disc_cluster_member_count(c));
    ASSERT(!disc_cluster_is_joined(c));

    bool closed = false;
    uv_close((uv_handle_t *)&udp, NULL);
    disc_cluster_close(c, on_closed_flag, &closed);
    while (uv_loop_alive(&loop))
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT(closed);
    ASSERT_EQ(0, uv_loop_close(&loop));
}

/* ---- closing from inside an event callback ---- */

static struct disc_cluster *closer;
static bool closer_closed;

static void on_event_close(void *arg, enum disc_event_type ev, const struct disc_member *m,
                           enum disc_member_state old)
{
    (void)arg;
    (void)m;
    (void)old;
    if (ev == DISC_EV_JOIN && closer != NULL) {
        disc_cluster_close(closer, on_closed_flag, &closer_closed);
        closer = NULL;
    }
}

static bool pred_closer_closed(void *arg)
{
    (void)arg;
    return closer_closed;
}

TEST(loop_close_from_event_callback)
{
    ASSERT_OK(wr_crypto_init());
    wr_log_level_cur = WR_LOG_WARN;
    ASSERT_OK(uv_loop_init(&loop));
    struct disc_cluster_config cfg = {0};
    struct disc_cluster *a = NULL;
    cfg.bind = "127.0.0.1:0";
    snprintf(cfg.self.id, sizeof(cfg.self.id), "a");
    ASSERT_OK(disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &a));
    snprintf(cfg.self.id, sizeof(cfg.self.id), "b");
    cfg.event_cb = on_event_close;
    ASSERT_OK(disc_cluster_start(&loop, &cfg, disc_keyring_new(key_good), &closer));
    /* b learns a (through a's answer to b's join) and closes itself in the
     * JOIN callback, in the middle of handling that answer. */
    const char *addrs[1] = {disc_cluster_addr(a)};
    ASSERT_OK(disc_cluster_join(closer, addrs, 1));
    ASSERT(run_until(pred_closer_closed, NULL, 5000));
    bool closed = false;
    disc_cluster_close(a, on_closed_flag, &closed);
    while (uv_loop_alive(&loop))
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT(closed);
    ASSERT_EQ(0, uv_loop_close(&loop));
}

TEST_MAIN(TEST_ENTRY(loop_cluster_converge_fail_leave_rejoin_wrong_key),
          TEST_ENTRY(loop_rejoin_seeds_when_alone), TEST_ENTRY(loop_rejoin_waits_the_interval),
          TEST_ENTRY(loop_start_rejects_bad_config),
          TEST_ENTRY(loop_hostile_input_dropped_and_counted),
          TEST_ENTRY(loop_close_from_event_callback))
