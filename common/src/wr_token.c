/* wr_token.c: not written yet. */
