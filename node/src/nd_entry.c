/* nd_entry.c: not written yet. */
