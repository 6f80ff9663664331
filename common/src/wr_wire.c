/* wr_wire.c: not written yet. */
