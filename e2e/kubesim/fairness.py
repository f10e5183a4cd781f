"""Fair queuing of request execution between users, standing in for what a multi-core
kube-apiserver with API Priority and Fairness gives: one client's burst does not hold up another
client's requests.

kubesim executes requests on one Python thread, and asyncio runs what is ready in arrival
order, so without this a request waits behind every request that came before it: one client
with 64 requests in flight delays every other client's next request by 64 request times. Here a
request's handler runs only while it holds a seat (one by default: the thread). Waiting
requests queue per flow, and a freed seat goes to the flow that has used the least execution
time so far (start-time fair queuing on measured work, as APF's fair queuing advances virtual
time with the seat-seconds requests take): a client of cheap requests gets as much of the
server's time as a client of costly ones, not as many requests. A flow is one user, APF's
default distinguisher (ByUser); a flow that was idle starts level with the busy ones rather than
with credit. A handler gives its seat back while it waits on something outside (an admission
webhook) and queues again for it afterwards.

Not modelled: priority levels, concurrency shares, shuffle sharding, queue limits and the 429s
they produce (faults.py injects 429s), and seats of watches (long-running requests take none).
"""

import asyncio
import collections
import contextlib
import contextvars
import time

# The seat of the request running in this context. A task the handler starts inherits the
# variable but is not the holder.
_holder = contextvars.ContextVar("kubesim_seat", default=None)


class _Hold:
    def __init__(self, task, flow, since):
        self.task, self.flow, self.held, self.since = task, flow, True, since


class FairQueue:
    def __init__(self, seats=1, clock=time.monotonic):
        if seats < 1:
            raise ValueError("seats must be at least 1")
        self.seats = seats
        self.clock = clock
        self.free = seats
        self.waiting = {}  # flow -> deque of futures, in arrival order
        self.used = {}  # flow -> seconds of execution, levelled when the flow becomes busy
        self.virtual_now = 0.0  # the usage of the flow served last
        self.dispatching = False  # a _dispatch is scheduled
        self.granted = 0  # seats handed out since the start

    async def _acquire(self, flow):
        # Always through the queue, even with a seat free: handlers run to completion without
        # yielding, so a seat is free whenever the next ready task asks, and granting it then
        # would serve requests in arrival order. Queued, they are picked fairly once the
        # requests that are ready meanwhile have queued too.
        fut = asyncio.get_running_loop().create_future()
        q = self.waiting.get(flow)
        if q is None:
            q = self.waiting[flow] = collections.deque()
            self.used[flow] = max(self.used.get(flow, 0.0), self.virtual_now)
        q.append(fut)
        self._schedule()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()  # the seat was handed over as the waiter was cancelled
            raise

    def _release(self):
        self.free += 1
        self._schedule()

    def _schedule(self):
        if self.free > 0 and self.waiting and not self.dispatching:
            self.dispatching = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self):
        """Hands the free seats to the oldest live waiter of the flow that has used least."""
        self.dispatching = False
        while self.free > 0 and self.waiting:
            flow = min(self.waiting, key=self.used.__getitem__)
            q = self.waiting[flow]
            fut = q.popleft()
            if not q:
                del self.waiting[flow]
            if not fut.done():  # a cancelled waiter is skipped
                self.free -= 1
                self.granted += 1
                self.virtual_now = self.used[flow]
                fut.set_result(None)

    def _charge(self, hold):
        self.used[hold.flow] = self.used.get(hold.flow, 0.0) + self.clock() - hold.since

    @contextlib.asynccontextmanager
    async def seat(self, flow):
        """Holds a seat of flow's for the block."""
        await self._acquire(flow)
        hold = _Hold(asyncio.current_task(), flow, self.clock())
        token = _holder.set(hold)
        try:
            yield
        finally:
            _holder.reset(token)
            if hold.held:
                self._charge(hold)
                self._release()

    @contextlib.asynccontextmanager
    async def away(self):
        """Gives the current task's seat back for the block (an outside call) and waits for one
        again after it; a no-op for a task holding none."""
        hold = _holder.get()
        if hold is None or not hold.held or hold.task is not asyncio.current_task():
            yield
            return
        hold.held = False
        self._charge(hold)
        self._release()
        try:
            yield
        finally:
            await self._acquire(hold.flow)
            hold.held, hold.since = True, self.clock()

    def stats(self):
        return {"seats": self.seats, "free": self.free, "queuedFlows": len(self.waiting),
                "queued": sum(len(q) for q in self.waiting.values()), "granted": self.granted,
                "secondsByUser": {f: round(u, 3) for f, u in self.used.items()}}
