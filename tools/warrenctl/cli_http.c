/*
 * cli_http.c: warrenctl's tiny blocking HTTP/1.0 client for nodes' admin
 * APIs: one GET per connection, a connect deadline, read and write
 * timeouts, a size cap. Responses are parsed with http_parser. Commands call
 * cli_admin_get, which also turns failures into messages and exit codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "wr.h"

struct cli_http_parse {
    struct wr_buf body;
    bool done;
    int err;
};

static int cli_http_on_body(http_parser *p, const char *at, size_t len)
{
    struct cli_http_parse *hp = p->data;
    if (hp->body.len + len > CLI_HTTP_MAX_BODY) {
        hp->err = WR_ETOOBIG;
        return -1;
    }
    if (wr_buf_append(&hp->body, at, len) != 0) {
        hp->err = WR_ENOMEM;
        return -1;
    }
    return 0;
}

static int cli_http_on_message_complete(http_parser *p)
{
    struct cli_http_parse *hp = p->data;
    hp->done = true;
    return 0;
}

static const http_parser_settings cli_http_settings = {
    .on_body = cli_http_on_body,
    .on_message_complete = cli_http_on_message_complete,
};

/* Non-blocking connect bounded by CLI_CONNECT_TIMEOUT_MS; returns the fd
 * (blocking again, with I/O timeouts) or a negative errno. */
static int cli_http_connect(const struct sockaddr_storage *ss)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    socklen_t slen =
        ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    int err = 0;
    if (connect(fd, (const struct sockaddr *)ss, slen) != 0) {
        if (errno != EINPROGRESS) {
            err = -errno;
            goto fail_fd;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r;
        do {
            r = poll(&pfd, 1, CLI_CONNECT_TIMEOUT_MS);
        } while (r < 0 && errno == EINTR);
        if (r == 0) {
            err = UV_ETIMEDOUT;
            goto fail_fd;
        }
        int soerr = 0;
        socklen_t elen = sizeof(soerr);
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) != 0) {
            err = -errno;
            goto fail_fd;
        }
        if (soerr != 0) {
            err = -soerr;
            goto fail_fd;
        }
    }
    int flags = fcntl(fd, F_GETFL);
    struct timeval tv = {.tv_sec = CLI_IO_TIMEOUT_MS / 1000,
                         .tv_usec = (CLI_IO_TIMEOUT_MS % 1000) * 1000};
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        err = -errno;
        goto fail_fd;
    }
    return fd;

fail_fd:
    close(fd);
    return err;
}

static int cli_http_send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? UV_ETIMEDOUT : -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cli_http_get(const char *addr, const char *path, struct cli_http_resp *resp)
{
    return cli_http_request(addr, "GET", path, NULL, resp);
}

int cli_http_request(const char *addr, const char *method, const char *path, const char *body,
                     struct cli_http_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct sockaddr_storage ss;
    if (wr_addr_parse(addr, &ss) != 0)
        return WR_EUSAGE;
    struct cli_http_parse hp = {0};
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &hp;

    int fd = cli_http_connect(&ss);
    if (fd < 0)
        return fd;
    char req[4096];
    size_t blen = body != NULL ? strlen(body) : 0;
    int rlen = snprintf(req, sizeof(req),
                        "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: warrenctl\r\n"
                        "Accept: */*\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n%s",
                        method, path, addr, blen, body != NULL ? body : "");
    int err = 0;
    if (rlen < 0 || (size_t)rlen >= sizeof(req)) {
        err = WR_EUSAGE;
        goto fail;
    }
    err = cli_http_send_all(fd, req, (size_t)rlen);
    wr_memzero(req, sizeof(req)); /* a keyring request carries a key */
    if (err != 0)
        goto fail;
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno == EAGAIN ? UV_ETIMEDOUT : -errno;
            goto fail;
        }
        /* n == 0 tells the parser about EOF (the end of a body without length). */
        size_t used = http_parser_execute(&parser, &cli_http_settings, buf, (size_t)n);
        if (hp.err != 0) {
            err = hp.err;
            goto fail;
        }
        if (HTTP_PARSER_ERRNO(&parser) != HPE_OK || used != (size_t)n) {
            err = WR_EPROTO;
            goto fail;
        }
        if (hp.done)
            break;
        if (n == 0) {
            err = WR_EPROTO; /* EOF before the response was complete */
            goto fail;
        }
    }
    close(fd);
    resp->status = (int)parser.status_code;
    resp->body_len = hp.body.len;
    resp->body = malloc(hp.body.len + 1);
    if (resp->body == NULL) {
        wr_buf_free(&hp.body);
        return WR_ENOMEM;
    }
    if (hp.body.len > 0)
        memcpy(resp->body, hp.body.data + hp.body.off, hp.body.len);
    resp->body[hp.body.len] = '\0';
    wr_buf_free(&hp.body);
    return 0;

fail:
    close(fd);
    wr_buf_free(&hp.body);
    return err;
}

void cli_http_resp_free(struct cli_http_resp *resp)
{
    WR_FREE(resp->body);
    resp->body_len = 0;
}

int cli_admin_get(const struct cli_cmd *cmd, const char *addr, const char *path,
                  struct cli_http_resp *resp)
{
    int err = cli_http_get(addr, path, resp);
    if (err == WR_EUSAGE)
        return cli_usage_err(cmd, "invalid --node '%s' (use IP:PORT)", addr);
    if (err != 0) {
        int code = cli_exit_for(err);
        if (err == WR_EPROTO)
            cli_err(cmd, "%s does not answer like a warren admin API (not HTTP)", addr);
        else
            cli_err(cmd, "cannot reach the admin API at %s: %s", addr, wr_strerror(err));
        return code;
    }
    if (resp->status != 200) {
        /* The first line of the body is the server's reason. */
        int len = (int)strcspn(resp->body, "\r\n");
        cli_err(cmd, "%s answered %d for %s%s%.*s", addr, resp->status, path, len ? ": " : "",
                len > 200 ? 200 : len, resp->body);
        cli_http_resp_free(resp);
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}
