/*
 * bench_gossip_net.c: how "warren-bench gossip" reads a warren-node's view:
 * a small HTTP/1.1 GET client over one blocking keep-alive connection to the
 * admin API, /v1/members decoded with jansson, and single /metrics series.
 * Also the socket helpers that bench_serf.c shares. Every read is bounded in
 * size and by the socket timeouts; it starts no process.
 */
#include "bench_gossip.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BENCH_HTTP_HEAD_MAX 16384
#define BENCH_HTTP_BODY_MAX (8u << 20) /* /v1/members of 64 members is about 16 KiB */

int bench_gnet_dial(uint16_t port, uint32_t timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

bool bench_gnet_write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        b += n;
        len -= (size_t)n;
    }
    return true;
}

int bench_gnet_member_index(const char *id, size_t len, const char *prefix, uint32_t n)
{
    size_t pl = strlen(prefix);
    if (len <= pl || len > pl + 3 || memcmp(id, prefix, pl) != 0)
        return -1;
    uint32_t idx = 0;
    for (size_t i = pl; i < len; i++) {
        if (id[i] < '0' || id[i] > '9')
            return -1;
        idx = idx * 10 + (uint32_t)(id[i] - '0');
    }
    return idx < n ? (int)idx : -1;
}

/* ---- HTTP/1.1 GET ---- */

struct bench_http_resp {
    int status;
    char *body; /* malloc'd, NUL-terminated; the caller frees it */
    size_t len;
};

/* Content-Length of a response head (NUL-terminated), or -1. */
static long bench_http_content_length(const char *head)
{
    const char *p = strcasestr(head, "\r\ncontent-length:");
    if (p == NULL)
        return -1;
    char *end;
    long v = strtol(p + 17, &end, 10);
    return end == p + 17 || v < 0 ? -1 : v;
}

/* Sends one GET and reads the response: head, then exactly Content-Length
 * bytes (the admin API always sends it), so the connection can carry the
 * next request. */
static int bench_http_get(int fd, const char *path, struct bench_http_resp *r)
{
    memset(r, 0, sizeof(*r));
    char req[256];
    int rl = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (rl < 0 || (size_t)rl >= sizeof(req))
        return -EINVAL;
    if (!bench_gnet_write_all(fd, req, (size_t)rl))
        return errno != 0 ? -errno : -EPIPE;
    char head[BENCH_HTTP_HEAD_MAX + 1];
    size_t hl = 0;
    const char *end = NULL;
    while (end == NULL) {
        if (hl == BENCH_HTTP_HEAD_MAX)
            return -EPROTO;
        ssize_t k = recv(fd, head + hl, BENCH_HTTP_HEAD_MAX - hl, 0);
        if (k <= 0)
            return k == 0 ? -ECONNRESET : -errno;
        hl += (size_t)k;
        head[hl] = '\0';
        end = memmem(head, hl, "\r\n\r\n", 4);
    }
    size_t head_len = (size_t)(end - head) + 4;
    head[head_len - 2] = '\0'; /* the head alone, for the header searches */
    long cl = bench_http_content_length(head);
    if (sscanf(head, "HTTP/1.%*d %d", &r->status) != 1 || cl < 0 ||
        (unsigned long)cl > BENCH_HTTP_BODY_MAX)
        return -EPROTO;
    r->len = (size_t)cl;
    r->body = malloc(r->len + 1);
    if (r->body == NULL)
        return -ENOMEM;
    size_t have = hl - head_len;
    if (have > r->len)
        have = r->len; /* we never pipeline, so nothing should follow */
    memcpy(r->body, head + head_len, have);
    while (have < r->len) {
        ssize_t k = recv(fd, r->body + have, r->len - have, 0);
        if (k <= 0) {
            int err = k == 0 ? -ECONNRESET : -errno;
            free(r->body);
            r->body = NULL;
            return err;
        }
        have += (size_t)k;
    }
    r->body[r->len] = '\0';
    return 0;
}

/* ---- warren's admin API ---- */

static enum bench_gstate bench_warren_state(const char *s)
{
    if (strcmp(s, "ALIVE") == 0)
        return BENCH_GS_ALIVE;
    if (strcmp(s, "SUSPECT") == 0)
        return BENCH_GS_SUSPECT;
    if (strcmp(s, "DEAD") == 0)
        return BENCH_GS_DEAD;
    if (strcmp(s, "LEFT") == 0)
        return BENCH_GS_LEFT;
    return BENCH_GS_UNKNOWN;
}

int bench_warren_members(int fd, const char *prefix, uint32_t n, struct bench_gview *v)
{
    memset(v, 0, sizeof(*v));
    struct bench_http_resp r;
    int err = bench_http_get(fd, "/v1/members", &r);
    if (err != 0)
        return err;
    json_t *root = r.status == 200 ? json_loadb(r.body, r.len, 0, NULL) : NULL;
    free(r.body);
    if (!json_is_array(root)) {
        json_decref(root);
        return -EPROTO;
    }
    size_t i;
    json_t *m;
    json_array_foreach(root, i, m)
    {
        const char *id = json_string_value(json_object_get(m, "id"));
        const char *st = json_string_value(json_object_get(m, "state"));
        int idx = id != NULL ? bench_gnet_member_index(id, strlen(id), prefix, n) : -1;
        if (idx < 0 || st == NULL)
            v->foreign++;
        else
            v->st[idx] = (uint8_t)bench_warren_state(st);
    }
    json_decref(root);
    return 0;
}

int bench_warren_metric(int fd, const char *series, double *out)
{
    struct bench_http_resp r;
    int err = bench_http_get(fd, "/metrics", &r);
    if (err != 0)
        return err;
    err = -ENOENT;
    size_t sl = strlen(series);
    for (const char *line = r.body; r.status == 200 && line != NULL && *line != '\0';) {
        if (strncmp(line, series, sl) == 0 && line[sl] == ' ') {
            *out = strtod(line + sl + 1, NULL);
            err = 0;
            break;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    free(r.body);
    return err;
}
