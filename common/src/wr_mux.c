/* wr_mux.c: not written yet. */
