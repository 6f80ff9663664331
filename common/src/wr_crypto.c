/* wr_crypto.c: not written yet. */
