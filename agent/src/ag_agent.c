/*
 * ag_agent.c: the agent. It holds a pool of tunnel links, one per live node:
 * the first dial goes to the fleet address (a load balancer, or one node);
 * every node's WELCOME and DISCOVERY lists name the live nodes, and the
 * agent keeps dialing (targeted when a node has a direct address, else
 * through the fleet with the node's SNI) until it holds a link to each.
 * Duplicates are closed as soon as TLS names the node. Streams the nodes
 * open are served by dialing the named local service. docs/pool.md has the
 * algorithm; ag_pool.c the bookkeeping, ag_link.c one link.
 */
#include "ag_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Retry of a dial that landed on a node already held: short, jittered. */
#define AG_DUP_BACKOFF_BASE_MS 10
#define AG_DUP_BACKOFF_MAX_MS 200
/* Duplicates in a row for one node before its retries back off like
 * failures: 8 x the nodes wanted, at least 64. Behind a random balancer a
 * dial reaches a given node with probability 1/N, so the chance of missing
 * it 8N times in a row is e^-8; past that, the fleet address does not lead
 * there (one node given as --proxy, or the node not behind the balancer). */
#define AG_DUP_STREAK_MIN 64
#define AG_DUP_STREAK_PER_NODE 8
/* A node that sent GOAWAY is dialed again this long after its link closed
 * if it is still listed (a restart that gossip did not show as a leave). */
#define AG_GOAWAY_REDIAL_MS 1000

struct ag_agent {
    uv_loop_t *loop;
    struct ag_config cfg;
    char token[WR_TOKEN_MAX + 1];
    char cluster[AG_HOST_MAX + 1]; /* from the CA: node SNI is <node>.<cluster> */
    char sni[AG_HOST_MAX + 1];     /* blind dials: --sni, or the cluster name */
    struct wr_tls_ctx *tls;
    struct ag_pool pool;
    struct ag_link links; /* list head */
    uint32_t n_links, n_dialing;
    uv_timer_t pool_timer;
    uv_signal_t sig_term, sig_int, sig_usr1;
    uint32_t n_relays;
    uint64_t streams_served, streams_refused, registrations, duplicates, dial_failures;
    uint64_t dials[3]; /* direct, fleet (aimed by SNI), blind */
    size_t last_wanted, last_held, last_dialing;
    /* Does the fleet address route by SNI? Dials aimed at a node through it
     * start one per node; once one lands elsewhere (a plain L4 balancer)
     * several go at once, until 3 in a row land where aimed again. */
    bool fleet_parallel;
    uint32_t fleet_hits;
    bool status_logged;
    int pending_closes;
    bool stopping;
};

enum { AG_DIAL_DIRECT = 0, AG_DIAL_FLEET, AG_DIAL_BLIND };
static const char *const ag_dial_kind_names[3] = {"direct", "fleet", "blind"};

const struct ag_config *ag__agent_cfg(const struct ag_agent *a)
{
    return &a->cfg;
}

uv_loop_t *ag__agent_loop(const struct ag_agent *a)
{
    return a->loop;
}

struct wr_tls_ctx *ag__agent_tls(const struct ag_agent *a)
{
    return a->tls;
}

const char *ag__agent_token(const struct ag_agent *a)
{
    return a->token;
}

static void ag_agent_kick(struct ag_agent *a);

/* ---- status ---------------------------------------------------------------- */

static size_t ag_agent_held(const struct ag_agent *a)
{
    size_t k = 0;
    for (const struct ag_link *l = a->links.next; l != &a->links; l = l->next)
        k += l->state == AG_LINK_ST_READY;
    return k;
}

/* The Prometheus text file of --metrics-file (node_exporter's textfile
 * convention), rewritten atomically whenever the pool changes. */
static void ag_agent_write_metrics(struct ag_agent *a, size_t wanted, size_t held)
{
    if (a->cfg.metrics_file == NULL)
        return;
    char text[2048];
    int n = snprintf(
        text, sizeof(text),
        "# HELP warren_agent_nodes_wanted Live nodes the discovery lists name.\n"
        "# TYPE warren_agent_nodes_wanted gauge\nwarren_agent_nodes_wanted %zu\n"
        "# HELP warren_agent_nodes_held Nodes with a registered tunnel (no GOAWAY).\n"
        "# TYPE warren_agent_nodes_held gauge\nwarren_agent_nodes_held %zu\n"
        "# HELP warren_agent_dials_in_flight Dials not yet registered.\n"
        "# TYPE warren_agent_dials_in_flight gauge\nwarren_agent_dials_in_flight %u\n"
        "# HELP warren_agent_dials_total Dials started, by kind.\n"
        "# TYPE warren_agent_dials_total counter\n"
        "warren_agent_dials_total{kind=\"direct\"} %llu\n"
        "warren_agent_dials_total{kind=\"fleet\"} %llu\n"
        "warren_agent_dials_total{kind=\"blind\"} %llu\n"
        "# HELP warren_agent_dial_duplicates_total Dials that landed on a node already held.\n"
        "# TYPE warren_agent_dial_duplicates_total counter\n"
        "warren_agent_dial_duplicates_total %llu\n"
        "# HELP warren_agent_dial_failures_total Dials that ended before registering.\n"
        "# TYPE warren_agent_dial_failures_total counter\n"
        "warren_agent_dial_failures_total %llu\n"
        "# HELP warren_agent_registrations_total WELCOMEs received.\n"
        "# TYPE warren_agent_registrations_total counter\n"
        "warren_agent_registrations_total %llu\n"
        "# HELP warren_agent_streams_total Streams served.\n"
        "# TYPE warren_agent_streams_total counter\nwarren_agent_streams_total %llu\n"
        "# HELP warren_agent_streams_refused_total Streams refused (service unknown or down).\n"
        "# TYPE warren_agent_streams_refused_total counter\n"
        "warren_agent_streams_refused_total %llu\n",
        wanted, held, a->n_dialing, (unsigned long long)a->dials[AG_DIAL_DIRECT],
        (unsigned long long)a->dials[AG_DIAL_FLEET], (unsigned long long)a->dials[AG_DIAL_BLIND],
        (unsigned long long)a->duplicates, (unsigned long long)a->dial_failures,
        (unsigned long long)a->registrations, (unsigned long long)a->streams_served,
        (unsigned long long)a->streams_refused);
    if (n < 0 || (size_t)n >= sizeof(text))
        return;
    int err = wr_write_file(a->cfg.metrics_file, text, (size_t)n, 0644);
    if (err != 0)
        WR_WARN("agent", "metrics_file_failed", "file=%s err=%s", a->cfg.metrics_file,
                wr_err_name(err));
}

/* Logs the pool's shape when it changed (info for wanted and held, debug
 * for dials in flight) and rewrites the metrics file. */
static void ag_agent_pool_status(struct ag_agent *a)
{
    size_t wanted = ag__pool_wanted(&a->pool), held = ag_agent_held(a);
    bool shape = !a->status_logged || wanted != a->last_wanted || held != a->last_held;
    if (!shape && a->n_dialing == a->last_dialing)
        return;
    a->status_logged = true;
    a->last_wanted = wanted;
    a->last_held = held;
    a->last_dialing = a->n_dialing;
    if (shape)
        WR_INFO("agent", "pool", "wants=%zu holds=%zu dialing=%u dials=%llu duplicates=%llu",
                wanted, held, a->n_dialing,
                (unsigned long long)(a->dials[0] + a->dials[1] + a->dials[2]),
                (unsigned long long)a->duplicates);
    else
        WR_DEBUG("agent", "pool", "wants=%zu holds=%zu dialing=%u", wanted, held, a->n_dialing);
    ag_agent_write_metrics(a, wanted, held);
}

static void ag_agent_log_status(struct ag_agent *a)
{
    WR_INFO("agent", "status",
            "tunnel=%s wants=%zu holds=%zu dialing=%u relays=%u streams=%llu refused=%llu "
            "dials=%llu duplicates=%llu registrations=%llu",
            a->cfg.tunnel, ag__pool_wanted(&a->pool), ag_agent_held(a), a->n_dialing, a->n_relays,
            (unsigned long long)a->streams_served, (unsigned long long)a->streams_refused,
            (unsigned long long)(a->dials[0] + a->dials[1] + a->dials[2]),
            (unsigned long long)a->duplicates, (unsigned long long)a->registrations);
    for (const struct ag_link *l = a->links.next; l != &a->links; l = l->next)
        WR_INFO("agent", "status_link",
                "node=%s target=%s addr=%s state=%s rtt_us=%llu streams=%zu",
                l->node_id[0] ? l->node_id : "-", l->target[0] ? l->target : "-",
                l->addr_str[0] ? l->addr_str : "-", ag__link_state_str(l->state),
                (unsigned long long)l->rtt_us, ag__link_streams(l));
}

/* ---- stop ----------------------------------------------------------------- */

static void ag_agent_on_handle_close(uv_handle_t *h)
{
    struct ag_agent *a = h->data;
    a->pending_closes--;
}

static void ag_agent_close_handle(struct ag_agent *a, uv_handle_t *h)
{
    if (uv_is_closing(h))
        return;
    h->data = a;
    a->pending_closes++;
    uv_close(h, ag_agent_on_handle_close);
}

/* Once stopping, every link gone and every relay finished, close the rest. */
static void ag_agent_maybe_stopped(struct ag_agent *a)
{
    if (!a->stopping || a->n_links > 0 || a->n_relays > 0)
        return;
    ag_agent_close_handle(a, (uv_handle_t *)&a->pool_timer);
    ag_agent_close_handle(a, (uv_handle_t *)&a->sig_term);
    ag_agent_close_handle(a, (uv_handle_t *)&a->sig_int);
    ag_agent_close_handle(a, (uv_handle_t *)&a->sig_usr1);
}

/* ---- backoff ---------------------------------------------------------------- */

uint64_t ag__backoff_delay(uint32_t base_ms, uint32_t max_ms, uint32_t attempt, uint64_t rnd)
{
    if (attempt == 0)
        return 0; /* a link that was up is redialed at once */
    uint64_t ceil = base_ms;
    for (uint32_t i = 1; i < attempt && ceil < max_ms; i++)
        ceil *= 2;
    if (ceil > max_ms)
        ceil = max_ms;
    /* Full jitter (AWS architecture blog): spreads a fleet of agents that
     * lost the same node instead of having them redial in lockstep. */
    return rnd % (ceil + 1);
}

/* ---- dialing ------------------------------------------------------------------ */

static void ag_agent_dial(struct ag_agent *a, struct ag_node *target)
{
    struct ag_link *l = wr_xcalloc(1, sizeof(*l));
    l->agent = a;
    int kind = AG_DIAL_BLIND;
    if (target != NULL) {
        snprintf(l->target, sizeof(l->target), "%s", target->id);
        target->aimed++;
        const char *colon = strrchr(target->addr, ':');
        if (target->addr[0] != '\0' && colon != NULL && colon != target->addr &&
            (size_t)(colon - target->addr) <= AG_HOST_MAX && strlen(colon + 1) < sizeof(l->port)) {
            kind = AG_DIAL_DIRECT;
            l->direct = true;
            const char *h = target->addr;
            size_t hl = (size_t)(colon - h);
            if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
                h++;
                hl -= 2;
            }
            memcpy(l->host, h, hl);
            l->host[hl] = '\0';
            snprintf(l->port, sizeof(l->port), "%s", colon + 1);
        } else {
            kind = AG_DIAL_FLEET;
        }
        /* The node's own name, so an SNI-routing balancer sends us to it. */
        snprintf(l->sni, sizeof(l->sni), "%s.%s", target->id, a->cluster);
    } else {
        snprintf(l->sni, sizeof(l->sni), "%s", a->sni);
    }
    if (!l->direct) {
        snprintf(l->host, sizeof(l->host), "%s", a->cfg.proxy_host);
        snprintf(l->port, sizeof(l->port), "%s", a->cfg.proxy_port);
    }
    a->dials[kind]++;
    a->n_links++;
    a->n_dialing++;
    l->prev = a->links.prev;
    l->next = &a->links;
    a->links.prev->next = l;
    a->links.prev = l;
    WR_DEBUG("agent", "dial", "kind=%s target=%s addr=%s:%s sni=%s", ag_dial_kind_names[kind],
             l->target[0] ? l->target : "-", l->host, l->port, l->sni);
    ag__link_start(l);
}

static void ag_agent_on_pool_timer(uv_timer_t *t)
{
    ag_agent_kick(t->data);
}

/* Starts the dials the pool wants now, within --max-dials, and sets the
 * timer for the next one. Called after anything that changes the pool. */
static void ag_agent_kick(struct ag_agent *a)
{
    if (a->stopping)
        return;
    uint64_t now = wr_now_ms(), wake = UINT64_MAX;
    while (a->n_dialing < a->cfg.max_dials) {
        struct ag_node *nd =
            ag__pool_next(&a->pool, now, a->fleet_parallel ? a->cfg.max_dials : 1, &wake);
        if (nd == NULL)
            break;
        ag_agent_dial(a, nd);
    }
    /* Nothing heard of yet (or every node forgotten): the fleet address,
     * blind, one dial at a time. */
    if (ag__pool_wanted(&a->pool) == 0 && a->n_links == 0) {
        if (now >= a->pool.next_blind_ms)
            ag_agent_dial(a, NULL);
        else if (a->pool.next_blind_ms < wake)
            wake = a->pool.next_blind_ms;
    }
    if (wake != UINT64_MAX)
        uv_timer_start(&a->pool_timer, ag_agent_on_pool_timer, wake > now ? wake - now : 0, 0);
    ag_agent_pool_status(a);
}

/* ---- upcalls from links ---------------------------------------------------------- */

/* The link no longer counts as a dial aimed at its target; returns the
 * target (NULL for a blind dial, or a target forgotten meanwhile). */
static struct ag_node *ag_agent_release_aim(struct ag_agent *a, struct ag_link *l)
{
    if (l->target[0] == '\0' || l->aim_released)
        return NULL;
    l->aim_released = true;
    struct ag_node *t = ag__pool_find(&a->pool, l->target);
    if (t != NULL && t->aimed > 0)
        t->aimed--;
    return t;
}

bool ag__agent_link_identified(struct ag_agent *a, struct ag_link *l)
{
    if (l->target[0] != '\0' && !l->direct) {
        bool hit = strcmp(l->target, l->node_id) == 0;
        a->fleet_hits = hit ? a->fleet_hits + 1 : 0;
        if (!hit && !a->fleet_parallel)
            WR_DEBUG("agent", "fleet_not_sni_routed", "aimed=%s landed=%s", l->target, l->node_id);
        if (!hit)
            a->fleet_parallel = true;
        else if (a->fleet_hits >= 3)
            a->fleet_parallel = false;
    }
    struct ag_node *nd = ag__pool_find(&a->pool, l->node_id);
    if (nd != NULL && nd->held != NULL && nd->held != l) {
        a->duplicates++;
        return false;
    }
    nd = ag__pool_get(&a->pool, l->node_id);
    if (nd == NULL)
        return false;
    nd->held = l;
    /* Landed elsewhere than aimed: the target is free to be dialed again. */
    if (l->target[0] != '\0' && strcmp(l->target, l->node_id) != 0) {
        ag_agent_release_aim(a, l);
        ag_agent_kick(a);
    }
    return true;
}

/* Drains links to nodes the latest list no longer names. */
static void ag_agent_apply(struct ag_agent *a, struct ag_link *from, const struct wr_node_entry *e,
                           size_t n)
{
    struct ag_pool_delta d;
    ag__pool_apply(&a->pool, e, n, wr_now_ms(), &d);
    if (d.added + d.relisted + d.dropped > 0)
        WR_INFO("agent", "nodes_changed", "from=%s listed=%zu added=%u back=%u gone=%u",
                from->node_id, n, d.added, d.relisted, d.dropped);
    for (struct ag_link *l = a->links.next; l != &a->links; l = l->next) {
        if (l->state != AG_LINK_ST_READY && l->state != AG_LINK_ST_DRAINING)
            continue;
        struct ag_node *nd = ag__pool_find(&a->pool, l->node_id);
        if (nd != NULL && nd->listed)
            continue;
        if (ag__link_streams(l) == 0) {
            ag__link_close(l, "node left the cluster");
        } else if (!l->close_when_idle) {
            WR_INFO("agent", "node_leaving", "node=%s streams=%zu", l->node_id,
                    ag__link_streams(l));
            l->close_when_idle = true;
        }
    }
}

void ag__agent_link_ready(struct ag_agent *a, struct ag_link *l, const struct wr_msg_welcome *w)
{
    a->registrations++;
    a->n_dialing--;
    ag_agent_release_aim(a, l);
    struct ag_node *nd = ag__pool_find(&a->pool, l->node_id);
    if (nd != NULL)
        nd->attempt = 0;
    a->pool.blind_attempt = 0;
    /* A node without gossip lists only itself; an old one may list none. */
    if (w->n_nodes > 0) {
        ag_agent_apply(a, l, w->nodes, w->n_nodes);
    } else {
        struct wr_node_entry self = {0};
        snprintf(self.node_id, sizeof(self.node_id), "%s", l->node_id);
        ag_agent_apply(a, l, &self, 1);
    }
    ag_agent_kick(a);
}

void ag__agent_link_discovery(struct ag_agent *a, struct ag_link *l,
                              const struct wr_msg_discovery *d)
{
    ag_agent_apply(a, l, d->nodes, d->n_nodes);
    ag_agent_kick(a);
}

void ag__agent_link_goaway(struct ag_agent *a, struct ag_link *l)
{
    struct ag_node *nd = ag__pool_find(&a->pool, l->node_id);
    if (nd != NULL)
        nd->goaway = true; /* not held any more, not redialed while it drains */
    if (ag__link_streams(l) == 0)
        ag__link_close(l, "goaway with no stream open");
    else
        l->close_when_idle = true;
    ag_agent_kick(a);
}

void ag__agent_link_gone(struct ag_agent *a, struct ag_link *l)
{
    uint64_t now = wr_now_ms();
    if (!l->was_ready) {
        a->n_dialing--;
        if (!l->duplicate)
            a->dial_failures++;
    }
    struct ag_node *t = l->aim_released ? NULL : ag_agent_release_aim(a, l);
    uint32_t streak_max = AG_DUP_STREAK_PER_NODE * (uint32_t)ag__pool_wanted(&a->pool);
    if (streak_max < AG_DUP_STREAK_MIN)
        streak_max = AG_DUP_STREAK_MIN;
    if (t != NULL) {
        if (!l->was_ready && t->held == NULL) {
            t->attempt++;
            uint64_t d;
            if (l->duplicate && t->attempt <= streak_max) {
                d = ag__backoff_delay(AG_DUP_BACKOFF_BASE_MS, AG_DUP_BACKOFF_MAX_MS, t->attempt,
                                      wr_rand64());
            } else {
                /* A fleet address that never leads to this node (one node
                 * as --proxy, no advertised address): stop hammering it. */
                if (l->duplicate && t->attempt == streak_max + 1)
                    WR_WARN("agent", "node_unreachable",
                            "node=%s duplicates=%u what=\"every dial through the fleet address "
                            "lands on another node; give nodes --advertise-tunnel-addr or use "
                            "an SNI-routing balancer\"",
                            t->id, streak_max);
                uint32_t k =
                    t->attempt > streak_max && l->duplicate ? t->attempt - streak_max : t->attempt;
                d = ag__backoff_delay(a->cfg.backoff_base_ms, a->cfg.backoff_max_ms, k,
                                      wr_rand64());
            }
            t->next_dial_ms = now + d;
        }
    }
    struct ag_node *x = l->identified ? ag__pool_find(&a->pool, l->node_id) : NULL;
    if (x != NULL && x->held == l) {
        x->held = NULL;
        if (x->goaway) {
            x->goaway = false;
            x->next_dial_ms = now + AG_GOAWAY_REDIAL_MS;
        } else if (l->was_ready) {
            x->attempt = 0;
            x->next_dial_ms = now; /* a link that was up is redialed at once */
        } else {
            x->attempt++;
            x->next_dial_ms = now + ag__backoff_delay(a->cfg.backoff_base_ms, a->cfg.backoff_max_ms,
                                                      x->attempt, wr_rand64());
        }
    }
    if (l->target[0] == '\0' && !l->was_ready && !l->duplicate) {
        a->pool.blind_attempt++;
        a->pool.next_blind_ms =
            now + ag__backoff_delay(a->cfg.backoff_base_ms, a->cfg.backoff_max_ms,
                                    a->pool.blind_attempt, wr_rand64());
    }
    l->prev->next = l->next;
    l->next->prev = l->prev;
    a->n_links--;
    free(l);
    ag__pool_gc(&a->pool); /* forget nodes no longer listed nor linked */
    ag_agent_kick(a);
    ag_agent_maybe_stopped(a);
}

/* ---- streams from the nodes ---------------------------------------------------- */

static void ag_agent_on_relay_done(struct wr_relay *r, int err, const char *why, void *arg)
{
    struct ag_agent *a = arg;
    (void)r;
    a->n_relays--;
    if (err != 0)
        WR_DEBUG("agent", "stream_failed", "err=%s reason=%s", wr_err_name(err), why ? why : "-");
    /* A leaving node's link closes with its last stream. */
    for (struct ag_link *l = a->links.next, *next; l != &a->links; l = next) {
        next = l->next;
        if (l->close_when_idle && ag__link_streams(l) == 0)
            ag__link_close(l, "node left the cluster");
    }
    ag_agent_maybe_stopped(a);
}

static void ag_agent_on_placeholder_close(struct wr_conn *c, void *arg)
{
    (void)c;
    (void)arg;
}

static const struct wr_conn_cbs ag_agent_placeholder_cbs = {
    .on_close = ag_agent_on_placeholder_close,
};

void ag__agent_link_open(struct ag_agent *a, struct ag_link *l, struct wr_mux_stream *s,
                         struct wr_slice hdr)
{
    struct wr_msg_open o;
    const char *why = NULL;
    if (wr_msg_open_decode(hdr, &o, &why) != 0) {
        WR_WARN("agent", "stream_refused", "node=%s stream=%u reason=\"%s\"", l->node_id,
                wr_mux_stream_id(s), why ? why : "bad open header");
        a->streams_refused++;
        wr_mux_stream_reset(s, WR_CODE_PROTOCOL);
        return;
    }
    const struct ag_service *svc = NULL;
    for (uint32_t i = 0; i < a->cfg.n_services; i++)
        if (strcmp(a->cfg.services[i].name, o.service) == 0)
            svc = &a->cfg.services[i];
    if (svc == NULL) {
        WR_WARN("agent", "stream_refused",
                "node=%s stream=%u service=%s reason=\"unknown "
                "service\"",
                l->node_id, wr_mux_stream_id(s), o.service);
        a->streams_refused++;
        wr_mux_stream_reset(s, WR_CODE_REFUSED);
        return;
    }
    struct wr_conn_opts opts = {.nodelay = true};
    int err = 0;
    struct wr_conn *c = wr_conn_dial(a->loop, (const struct sockaddr *)&svc->addr, &opts,
                                     &ag_agent_placeholder_cbs, NULL, &err);
    if (c == NULL) {
        WR_WARN("agent", "service_dial_failed", "service=%s err=%s", svc->name, wr_err_name(err));
        a->streams_refused++;
        wr_mux_stream_reset(s, WR_CODE_CONNECT);
        return;
    }
    a->streams_served++;
    a->n_relays++;
    WR_DEBUG("agent", "stream_open", "node=%s stream=%u service=%s client=%s", l->node_id,
             wr_mux_stream_id(s), svc->name, o.client_addr[0] ? o.client_addr : "-");
    wr_relay_new(c, s, ag_agent_on_relay_done, a);
}

/* ---- the agent ------------------------------------------------------------------------ */

void ag_config_init(struct ag_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->weight = 1;
    cfg->ping_interval_ms = 5000;
    cfg->ping_timeout_ms = 10000;
    cfg->hello_timeout_ms = 10000;
    cfg->backoff_base_ms = 250;
    cfg->backoff_max_ms = 30000;
    cfg->window = WR_MUX_DEFAULT_WINDOW;
    cfg->max_streams = 4096;
    cfg->max_dials = 8;
}

static void ag_agent_on_signal(uv_signal_t *sig, int signum)
{
    struct ag_agent *a = sig->data;
    if (signum == SIGUSR1) {
        ag_agent_log_status(a);
        return;
    }
    WR_INFO("agent", "signal", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    ag_agent_stop(a);
}

struct ag_agent *ag_agent_new(uv_loop_t *loop, const struct ag_config *cfg, int *err)
{
    struct ag_agent *a = wr_xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->cfg = *cfg;
    char *tok = NULL;
    size_t toklen = 0;
    *err = wr_read_file(cfg->token_file, WR_TOKEN_MAX + 64, &tok, &toklen);
    if (*err != 0) {
        WR_ERROR("agent", "config", "what=\"cannot read the token file\" file=%s err=%s",
                 cfg->token_file, wr_err_name(*err));
        goto fail;
    }
    while (toklen > 0 && (tok[toklen - 1] == '\n' || tok[toklen - 1] == '\r' ||
                          tok[toklen - 1] == ' ' || tok[toklen - 1] == '\t'))
        toklen--;
    if (toklen == 0 || toklen > WR_TOKEN_MAX) {
        WR_ERROR("agent", "config", "what=\"the token file holds no token\" file=%s",
                 cfg->token_file);
        wr_memzero(tok, toklen);
        free(tok);
        *err = WR_EUSAGE;
        goto fail;
    }
    memcpy(a->token, tok, toklen);
    a->token[toklen] = '\0';
    wr_memzero(tok, toklen);
    free(tok);
    *err = wr_cert_ca_cluster(cfg->ca_file, a->cluster, sizeof(a->cluster));
    if (*err != 0) {
        WR_ERROR("agent", "config", "what=\"cannot read the CA certificate\" file=%s err=%s",
                 cfg->ca_file, wr_err_name(*err));
        goto fail;
    }
    snprintf(a->sni, sizeof(a->sni), "%s", cfg->sni != NULL ? cfg->sni : a->cluster);
    a->tls = wr_tls_ctx_new_client(cfg->ca_file, err);
    if (a->tls == NULL) {
        WR_ERROR("agent", "config", "what=\"cannot load the CA certificate\" file=%s err=%s",
                 cfg->ca_file, wr_err_name(*err));
        goto fail;
    }
    ag__pool_init(&a->pool);
    a->links.next = a->links.prev = &a->links;
    uv_timer_init(loop, &a->pool_timer);
    a->pool_timer.data = a;
    return a;
fail:
    wr_memzero(a->token, sizeof(a->token));
    free(a);
    return NULL;
}

int ag_agent_start(struct ag_agent *a)
{
    uv_signal_init(a->loop, &a->sig_term);
    uv_signal_init(a->loop, &a->sig_int);
    uv_signal_init(a->loop, &a->sig_usr1);
    a->sig_term.data = a->sig_int.data = a->sig_usr1.data = a;
    uv_signal_start(&a->sig_term, ag_agent_on_signal, SIGTERM);
    uv_signal_start(&a->sig_int, ag_agent_on_signal, SIGINT);
    uv_signal_start(&a->sig_usr1, ag_agent_on_signal, SIGUSR1);
    WR_INFO("agent", "starting",
            "agent=%s tunnel=%s proxy=%s:%s sni=%s weight=%u services=%u max_dials=%u",
            a->cfg.agent_id, a->cfg.tunnel, a->cfg.proxy_host, a->cfg.proxy_port, a->sni,
            a->cfg.weight, a->cfg.n_services, a->cfg.max_dials);
    ag_agent_kick(a);
    return 0;
}

void ag_agent_stop(struct ag_agent *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    uv_timer_stop(&a->pool_timer);
    for (struct ag_link *l = a->links.next, *next; l != &a->links; l = next) {
        next = l->next;
        ag__link_close(l, "agent stopping");
    }
    ag_agent_maybe_stopped(a);
}

void ag_agent_free(struct ag_agent *a)
{
    ag_agent_log_status(a);
    ag_agent_write_metrics(a, ag__pool_wanted(&a->pool), 0);
    ag__pool_free(&a->pool);
    wr_tls_ctx_free(a->tls);
    wr_memzero(a->token, sizeof(a->token));
    free(a);
}
