/* wr_frame.c: not written yet. */
