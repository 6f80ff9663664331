/*
 * lb_backend.c: backend sets, the backend state machine (UP, DOWN,
 * DRAINING), picking (round-robin, power of two choices) and health checks
 * (TCP connect, or HTTP GET /readyz with rise/fall counts). Which members a
 * mesh set holds is lb_mesh.c's business; connections are lb_conn.c's.
 * Backends are never freed while the balancer runs: a mesh member that is
 * forgotten stays as a "gone" entry, so no connection or check can outlive
 * the object it points at.
 */
#include "lb_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LB_CHECK_RESP_MAX 64 /* an HTTP status line is all a check reads */

static const char *const lb_backend_state_names[LB_BACKEND_ST__COUNT] = {"UP", "DOWN", "DRAINING"};

const char *lb_backend_state_str(enum lb_backend_state s)
{
    return s < LB_BACKEND_ST__COUNT ? lb_backend_state_names[s] : "?";
}

/* ---- sets ---------------------------------------------------------------------- */

struct lb_set *lb__set_find(struct lb *lb, const char *name)
{
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        if (strcmp(lb->sets[i]->name, name) == 0)
            return lb->sets[i];
    }
    return NULL;
}

struct lb_set *lb__set_get(struct lb *lb, const char *name)
{
    struct lb_set *s = lb__set_find(lb, name);
    if (s != NULL || lb->n_sets == LB_MAX_SETS)
        return s;
    s = wr_xcalloc(1, sizeof(*s));
    s->lb = lb;
    snprintf(s->name, sizeof(s->name), "%s", name);
    lb->sets[lb->n_sets++] = s;
    return s;
}

struct lb_backend *lb__backend_add(struct lb_set *s, const struct sockaddr *addr,
                                   const char *node_id)
{
    if (s->n == LB_SET_BACKENDS_MAX)
        return NULL;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->b = wr_xrealloc(s->b, s->cap * sizeof(*s->b));
    }
    struct lb_backend *b = wr_xcalloc(1, sizeof(*b));
    b->set = s;
    b->lb = s->lb;
    if (node_id != NULL)
        snprintf(b->node_id, sizeof(b->node_id), "%s", node_id);
    if (addr != NULL) {
        memcpy(&b->addr, addr,
               addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                           : sizeof(struct sockaddr_in));
        wr_addr_str(addr, b->addr_str, sizeof(b->addr_str));
    }
    b->state = LB_BACKEND_ST_UP;
    b->healthy = true;
    b->in_mesh = true;
    s->b[s->n++] = b;
    return b;
}

struct lb_backend *lb__backend_find_node(struct lb_set *s, const char *node_id)
{
    for (uint32_t i = 0; i < s->n; i++) {
        if (strcmp(s->b[i]->node_id, node_id) == 0)
            return s->b[i];
    }
    return NULL;
}

void lb__set_counts(const struct lb_set *s, uint32_t out[LB_BACKEND_ST__COUNT])
{
    memset(out, 0, sizeof(uint32_t) * LB_BACKEND_ST__COUNT);
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->b[i]->gone)
            out[s->b[i]->state]++;
    }
}

void lb__sets_free(struct lb *lb)
{
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        struct lb_set *s = lb->sets[i];
        for (uint32_t k = 0; k < s->n; k++)
            free(s->b[k]);
        free(s->b);
        free(s);
        lb->sets[i] = NULL;
    }
    lb->n_sets = 0;
}

/* ---- the state machine ------------------------------------------------------------ */

#define LB_BIT(s) (1u << (s))
static const uint32_t lb_backend_allowed[LB_BACKEND_ST__COUNT] = {
    [LB_BACKEND_ST_UP] = LB_BIT(LB_BACKEND_ST_DOWN) | LB_BIT(LB_BACKEND_ST_DRAINING),
    [LB_BACKEND_ST_DOWN] = LB_BIT(LB_BACKEND_ST_UP) | LB_BIT(LB_BACKEND_ST_DRAINING),
    [LB_BACKEND_ST_DRAINING] = LB_BIT(LB_BACKEND_ST_UP) | LB_BIT(LB_BACKEND_ST_DOWN),
};

/* The one writer of b->state. Every transition between the three states is
 * legal; the table is here so that a new state has to say where it goes. */
static void lb_backend_set_state(struct lb_backend *b, enum lb_backend_state to, const char *why)
{
    WR_ASSERT(lb_backend_allowed[b->state] & LB_BIT(to));
    enum wr_log_level lvl = to == LB_BACKEND_ST_UP ? WR_LOG_INFO : WR_LOG_WARN;
    WR_LOG(lvl, "lb", "backend_state", "set=%s backend=%s node=%s from=%s to=%s reason=%s",
           b->set->name, b->addr_str, b->node_id[0] ? b->node_id : "-",
           lb_backend_state_str(b->state), lb_backend_state_str(to), why);
    b->state = to;
    b->state_changes++;
}

void lb__backend_update(struct lb_backend *b, const char *why)
{
    enum lb_backend_state to = (b->gone || !b->in_mesh) ? LB_BACKEND_ST_DRAINING
                               : b->healthy             ? LB_BACKEND_ST_UP
                                                        : LB_BACKEND_ST_DOWN;
    if (to != b->state)
        lb_backend_set_state(b, to, why);
}

static void lb_backend_check_result(struct lb_backend *b, bool ok, const char *detail)
{
    struct lb *lb = b->lb;
    if (ok) {
        b->checks_ok++;
        b->fail_streak = 0;
        b->ok_streak++;
        b->last_check_err[0] = '\0';
        if (!b->healthy && b->ok_streak >= lb->cfg.rise) {
            b->healthy = true;
            lb__backend_update(b, "check_rise");
        }
        return;
    }
    b->checks_failed++;
    b->ok_streak = 0;
    b->fail_streak++;
    snprintf(b->last_check_err, sizeof(b->last_check_err), "%s", detail);
    WR_DEBUG("lb", "check_failed", "set=%s backend=%s check=%s err=%s streak=%u", b->set->name,
             b->addr_str, b->check_http ? b->check_str : b->addr_str, detail, b->fail_streak);
    if (b->healthy && b->fail_streak >= lb->cfg.fall) {
        b->healthy = false;
        lb__backend_update(b, "check_fall");
    }
}

void lb__backend_connect_failed(struct lb_backend *b, int err)
{
    b->connect_fails++;
    b->ok_streak = 0;
    snprintf(b->last_check_err, sizeof(b->last_check_err), "connect %s", wr_err_name(err));
    if (b->healthy) {
        b->healthy = false;
        b->fail_streak = b->lb->cfg.fall;
        lb__backend_update(b, "connect_failed");
    }
}

/* ---- picking ---------------------------------------------------------------------- */

struct lb_backend *lb__set_pick(struct lb_set *s, enum lb_balance bal,
                                const struct lb_backend *avoid)
{
    if (s == NULL || s->n == 0)
        return NULL;
    if (bal == LB_BALANCE_RR) {
        for (uint32_t k = 0; k < s->n; k++) {
            uint32_t i = (s->rr + k) % s->n;
            struct lb_backend *b = s->b[i];
            if (b->state == LB_BACKEND_ST_UP && b != avoid) {
                s->rr = i + 1;
                return b;
            }
        }
        return NULL;
    }
    /* Power of two choices: two distinct random candidates, the one with
     * fewer open connections (the first on a tie, itself random). */
    struct lb_backend *cand[LB_SET_BACKENDS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->b[i]->state == LB_BACKEND_ST_UP && s->b[i] != avoid)
            cand[n++] = s->b[i];
    }
    if (n == 0)
        return NULL;
    if (n == 1)
        return cand[0];
    uint32_t i = wr_rand_below(n);
    uint32_t j = wr_rand_below(n - 1);
    if (j >= i)
        j++;
    return cand[j]->active < cand[i]->active ? cand[j] : cand[i];
}

/* ---- health checks ---------------------------------------------------------------- */

struct lb_check {
    struct lb_list link; /* in lb->checks */
    struct lb_backend *b;
    struct wr_conn *conn;
    uint64_t deadline_ms;
    char resp[LB_CHECK_RESP_MAX];
    size_t resp_len;
    bool done; /* the result was recorded */
};

static void lb_check_finish(struct lb_check *ck, bool ok, const char *detail)
{
    if (ck->done)
        return;
    ck->done = true;
    lb_backend_check_result(ck->b, ok, detail);
    wr_conn_close(ck->conn, false);
}

/* Judges the status line once it is complete (or the peer ended). */
static void lb_check_judge(struct lb_check *ck, bool final)
{
    const char *eol = memchr(ck->resp, '\n', ck->resp_len);
    if (eol == NULL && !final && ck->resp_len < sizeof(ck->resp))
        return;
    /* "HTTP/1.x 200 ..." */
    bool ok = ck->resp_len >= 12 && memcmp(ck->resp, "HTTP/1.", 7) == 0 &&
              memcmp(ck->resp + 8, " 200", 4) == 0;
    char detail[32] = "bad_response";
    const char *st = ck->resp + 9; /* peer bytes: logged only when they are digits */
    if (!ok && ck->resp_len >= 12 && memcmp(ck->resp, "HTTP/1.", 7) == 0 && st[0] >= '0' &&
        st[0] <= '9' && st[1] >= '0' && st[1] <= '9' && st[2] >= '0' && st[2] <= '9')
        snprintf(detail, sizeof(detail), "status_%c%c%c", st[0], st[1], st[2]);
    else if (!ok && ck->resp_len == 0)
        snprintf(detail, sizeof(detail), "%s", "no_response");
    lb_check_finish(ck, ok, detail);
}

static void lb_check_on_ready(struct wr_conn *c, int status, void *arg)
{
    struct lb_check *ck = arg;
    if (ck->done)
        return;
    if (status != 0) {
        lb_check_finish(ck, false, wr_err_name(status));
        return;
    }
    if (!ck->b->check_http) {
        lb_check_finish(ck, true, NULL);
        return;
    }
    static const char req[] = "GET /readyz HTTP/1.0\r\nHost: warren-lb\r\n"
                              "User-Agent: warren-lb\r\nConnection: close\r\n\r\n";
    if (wr_conn_write(c, (const uint8_t *)req, sizeof(req) - 1) != 0)
        lb_check_finish(ck, false, "write");
}

static void lb_check_on_read(struct wr_conn *c, const uint8_t *data, size_t len, void *arg)
{
    struct lb_check *ck = arg;
    (void)c;
    if (ck->done)
        return;
    size_t room = sizeof(ck->resp) - ck->resp_len;
    size_t n = len < room ? len : room;
    memcpy(ck->resp + ck->resp_len, data, n);
    ck->resp_len += n;
    lb_check_judge(ck, false);
}

static void lb_check_on_eof(struct wr_conn *c, void *arg)
{
    struct lb_check *ck = arg;
    (void)c;
    if (!ck->done)
        lb_check_judge(ck, true);
}

static void lb_check_on_error(struct wr_conn *c, int err, void *arg)
{
    struct lb_check *ck = arg;
    (void)c;
    lb_check_finish(ck, false, wr_err_name(err));
}

static void lb_check_on_close(struct wr_conn *c, void *arg)
{
    struct lb_check *ck = arg;
    (void)c;
    ck->b->checking = false;
    lb_list_remove(&ck->link);
    free(ck);
}

static const struct wr_conn_cbs lb_check_cbs = {
    .on_ready = lb_check_on_ready,
    .on_read = lb_check_on_read,
    .on_eof = lb_check_on_eof,
    .on_error = lb_check_on_error,
    .on_close = lb_check_on_close,
};

static void lb_check_start(struct lb *lb, struct lb_backend *b, uint64_t now)
{
    struct lb_check *ck = wr_xcalloc(1, sizeof(*ck));
    ck->b = b;
    uint32_t timeout = lb->cfg.check_timeout_ms;
    if (timeout == 0)
        timeout = lb->cfg.check_interval_ms < lb->cfg.connect_timeout_ms
                      ? lb->cfg.check_interval_ms
                      : lb->cfg.connect_timeout_ms;
    ck->deadline_ms = now + timeout;
    struct wr_conn_opts opts = {.nodelay = true, .max_queue = 4096};
    const struct sockaddr *to =
        (const struct sockaddr *)(b->check_http ? &b->check_addr : &b->addr);
    int err = 0;
    ck->conn = wr_conn_dial(lb->loop, to, &opts, &lb_check_cbs, ck, &err);
    if (ck->conn == NULL) {
        free(ck);
        lb_backend_check_result(b, false, wr_err_name(err));
        return;
    }
    b->checking = true;
    lb_list_insert_tail(&lb->checks, &ck->link);
}

void lb__checks_tick(struct lb *lb, uint64_t now)
{
    struct lb_list *pos, *tmp;
    lb_list_for_each_safe(pos, tmp, &lb->checks)
    {
        struct lb_check *ck = wr_container_of(pos, struct lb_check, link);
        if (!ck->done && now >= ck->deadline_ms)
            lb_check_finish(ck, false, "timeout");
    }
    if (lb->stopping)
        return;
    for (uint32_t i = 0; i < lb->n_sets; i++) {
        struct lb_set *s = lb->sets[i];
        for (uint32_t k = 0; k < s->n; k++) {
            struct lb_backend *b = s->b[k];
            if (b->gone || b->checking || now < b->next_check_ms)
                continue;
            b->next_check_ms = now + lb->cfg.check_interval_ms;
            lb_check_start(lb, b, now);
        }
    }
}

void lb__checks_stop(struct lb *lb)
{
    struct lb_list *pos, *tmp;
    lb_list_for_each_safe(pos, tmp, &lb->checks)
    {
        struct lb_check *ck = wr_container_of(pos, struct lb_check, link);
        ck->done = true;
        wr_conn_close(ck->conn, false);
    }
}
