/* wr_err.c: names and messages for error codes (project codes, then libuv's). */
#include "wr/err.h"

#include <stdio.h>
#include <stdlib.h>

const char *wr_strerror(int err)
{
    switch (err) {
#define WR_ERR_MSG_(name, val, msg)                                                                \
    case (val):                                                                                    \
        return msg;
        WR_ERRNO_MAP(WR_ERR_MSG_)
#undef WR_ERR_MSG_
    case 0:
        return "success";
    default:
        return uv_strerror(err);
    }
}

const char *wr_err_name(int err)
{
    switch (err) {
#define WR_ERR_NAME_(name, val, msg)                                                               \
    case (val):                                                                                    \
        return #name;
        WR_ERRNO_MAP(WR_ERR_NAME_)
#undef WR_ERR_NAME_
    case 0:
        return "OK";
    default:
        return uv_err_name(err);
    }
}

void wr_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "lvl=error ev=assert_failed what=\"%s\" at=%s:%d\n", what, file, line);
    abort();
}
