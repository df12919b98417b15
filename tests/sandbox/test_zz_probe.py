"""probe"""
import time
from tests.fixtures.sandbox import wait_until

def test_probe(sandbox, sandbox_agent, publisher):
    """probe"""
    url = sandbox_agent.publish_url(); sandbox_agent.start()
    t0=time.monotonic()
    pub = publisher(url, seconds=30)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=3)
    print("live after", time.monotonic()-t0)
    time.sleep(1)
    print("frozen", sandbox.freeze(sandbox_agent))
    tf=time.monotonic(); last=pub.frames(); lt=tf
    while time.monotonic()-tf < 20:
        f=pub.frames()
        if f!=last: last=f; lt=time.monotonic()
        if time.monotonic()-lt > 2: break
        time.sleep(0.1)
    print("stalled after", lt-tf, "frames", last, "alive", pub.proc.poll())
    print("status", sandbox_agent.status())
    t1=time.monotonic()
    sandbox.unfreeze()
    wait_until(lambda: pub.frames()>last, timeout=5)
    print("resumed after", time.monotonic()-t1)
    wait_until(lambda: sandbox_agent.status()["is_live"], timeout=5)
    print("live again after", time.monotonic()-t1)
    print(sandbox.stop_worker(3)); ts=time.monotonic(); last=pub.frames(); lt=ts
    while time.monotonic()-ts < 10:
        f=pub.frames()
        if f!=last: last=f; lt=time.monotonic()
        if time.monotonic()-lt > 1.5: break
        time.sleep(0.1)
    print("worker-stop stalled after", lt-ts, "alive", pub.proc.poll())
    wait_until(lambda: pub.frames()>last, timeout=6)
    print("resumed after", time.monotonic()-ts)
