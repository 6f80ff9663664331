/* wr_cert.c: not written yet. */
