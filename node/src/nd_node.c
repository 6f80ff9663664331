/* nd_node.c: not written yet. */
