/* wr_tls.c: not written yet. */
