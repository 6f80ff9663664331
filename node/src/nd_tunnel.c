/* nd_tunnel.c: not written yet. */
