/* wr_conn.c: not written yet. */
