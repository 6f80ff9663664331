/* wr_addr.c: numeric address parsing and formatting; no name resolution. */
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
