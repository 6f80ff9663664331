/* wr_addr.c: numeric address and network (CIDR) parsing, formatting and
 * matching; no name resolution. */
#include "wr/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wr/util.h"

int wr_addr_parse(const char *s, struct sockaddr_storage *out)
{
    char host[WR_ADDR_STRLEN];
    const char *colon;
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return WR_EUSAGE;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return WR_EUSAGE;
        size_t hl = (size_t)(close - s - 1);
        if (hl == 0 || hl >= sizeof(host))
            return WR_EUSAGE;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return WR_EUSAGE;
        size_t hl = (size_t)(colon - s);
        if (hl >= sizeof(host))
            return WR_EUSAGE;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    uint64_t port;
    if (wr_parse_uint(colon + 1, 0, 65535, &port) != 0)
        return WR_EUSAGE;
    if (host[0] == '\0')
        snprintf(host, sizeof(host), "0.0.0.0");
    else if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return WR_EUSAGE;
}

const char *wr_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%d", ip, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%d", ip, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

int wr_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

int wr_cidr_parse(const char *s, struct wr_cidr *out)
{
    char host[INET6_ADDRSTRLEN];
    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return WR_EUSAGE;
    const char *slash = strchr(s, '/');
    size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof(host))
        return WR_EUSAGE;
    memcpy(host, s, hl);
    host[hl] = '\0';
    struct wr_cidr c = {0};
    uint64_t maxbits = 0;
    if (inet_pton(AF_INET, host, c.addr) == 1) {
        c.family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, host, c.addr) == 1) {
        c.family = AF_INET6;
        maxbits = 128;
    } else {
        return WR_EUSAGE;
    }
    uint64_t bits = maxbits;
    if (slash != NULL && wr_parse_uint(slash + 1, 0, maxbits, &bits) != 0)
        return WR_EUSAGE;
    c.bits = (uint8_t)bits;
    /* Host bits must be zero: "10.0.0.1/8" is most likely a typo. */
    size_t nbytes = c.family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < nbytes; i++) {
        size_t first = i * 8;
        uint8_t mask = bits >= first + 8 ? 0xFF
                       : bits <= first   ? 0x00
                                         : (uint8_t)(0xFF << (8 - (bits - first)));
        if ((c.addr[i] & (uint8_t)~mask) != 0)
            return WR_EUSAGE;
    }
    *out = c;
    return 0;
}

static bool wr_cidr_prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8;
    if (memcmp(a, b, full) != 0)
        return false;
    unsigned rem = bits % 8;
    if (rem == 0)
        return true;
    uint8_t mask = (uint8_t)(0xFF << (8 - rem));
    return (a[full] & mask) == (b[full] & mask);
}

bool wr_cidr_match(const struct wr_cidr *c, const struct sockaddr *sa)
{
    const uint8_t *ip = NULL;
    int family = sa->sa_family;
    if (family == AF_INET) {
        ip = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        ip = (const uint8_t *)a6;
        if (c->family == AF_INET && IN6_IS_ADDR_V4MAPPED(a6)) {
            ip += 12;
            family = AF_INET;
        }
    } else {
        return false;
    }
    return c->family == family && wr_cidr_prefix_eq(ip, c->addr, c->bits);
}

bool wr_cidr_match_any(const struct wr_cidr *set, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++)
        if (wr_cidr_match(&set[i], sa))
            return true;
    return false;
}

const char *wr_cidr_str(const struct wr_cidr *c, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (c->family != AF_INET && c->family != AF_INET6) {
        snprintf(buf, len, "?");
        return buf;
    }
    inet_ntop(c->family, c->addr, ip, sizeof(ip));
    snprintf(buf, len, "%s/%u", ip, (unsigned)c->bits);
    return buf;
}
