/* ag_agent.c: not written yet. */
