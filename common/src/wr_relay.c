/* wr_relay.c: not written yet. */
