/* wr_tlsdev.c: not written yet. */
