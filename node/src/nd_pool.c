/* nd_pool.c: not written yet. */
