"""1,000 concurrent streams over one tunnel, each echoing its own payload.

Guards stream multiplexing: ids, per-stream flow control and teardown hold
when many streams are open at once, and every one gets exactly its own bytes.
"""
import asyncio
import os

import harness as h

N = 1000


async def one(addr, i):
    host, port = h.split_addr(addr)
    r, w = await asyncio.open_connection(host, port)
    payload = os.urandom(1000 + i)
    w.write(payload)
    await w.drain()
    got = await asyncio.wait_for(r.readexactly(len(payload)), 60)
    w.write_eof()
    rest = await asyncio.wait_for(r.read(), 60)
    w.close()
    return got == payload and rest == b""


async def many(addr):
    # All connections are opened before any finishes: they are concurrent.
    tasks = [asyncio.create_task(one(addr, i)) for i in range(N)]
    return await asyncio.gather(*tasks, return_exceptions=True)


def scenario(c):
    svc = h.Service(h.echo_handler)
    node, info = c.node(entries=["t1/echo"])
    c.agent(info["listen"], "t1", {"echo": svc.addr}, name="a1")
    h.wait_for(lambda: node.count("ev=agent_ready") >= 1, 15, "agent registered")
    res = asyncio.run(many(info["entries"]["t1/echo"]))
    bad = [r for r in res if r is not True]
    h.check(not bad, "%d of %d streams failed, e.g. %r" % (len(bad), N, bad[:3]))
    svc.close()


h.run(scenario, "streams_concurrent")
