"""kubesim's fair queuing of request execution (kubesim/fairness.py), on its own: the order in
which queued requests get the seat, with a clock the test advances as a handler's cost."""

import asyncio

import pytest

from kubesim.fairness import FairQueue


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run(queue, requests):
    """Queues every (flow, cost) at once; returns the flows in the order they were served."""
    served = []

    async def one(flow, cost):
        async with queue.seat(flow):
            served.append(flow)
            queue.clock.now += cost

    async def main():
        await asyncio.gather(*(one(f, c) for f, c in requests))
    asyncio.run(main())
    return served


def test_a_burst_does_not_hold_up_another_users_request():
    served = run(FairQueue(clock=Clock()), [("driver", 1.0)] * 64 + [("operator", 1.0)])
    assert served.index("operator") <= 1, served


def test_the_seat_goes_by_time_used_not_by_requests():
    # The driver's requests cost four times the operator's: the operator gets four for each.
    served = run(FairQueue(clock=Clock()), [("driver", 4.0)] * 10 + [("operator", 1.0)] * 40)
    first = served[:25]
    assert 4 <= first.count("driver") <= 6, first


def test_a_flow_idle_for_a_while_gets_no_credit_for_it():
    clock = Clock()
    queue = FairQueue(clock=clock)
    run(queue, [("a", 1.0)] * 10)  # a used 10 s while b was idle
    served = run(queue, [("a", 1.0)] * 5 + [("b", 1.0)] * 5)
    assert served[:4].count("a") >= 1 and served[:4].count("b") >= 1, served


def test_one_flow_is_served_in_arrival_order():
    clock = Clock()
    queue = FairQueue(clock=clock)
    served = []

    async def one(i):
        async with queue.seat("a"):
            served.append(i)

    async def main():
        await asyncio.gather(*(one(i) for i in range(20)))
    asyncio.run(main())
    assert served == list(range(20))


def test_away_lets_another_request_run_while_the_holder_waits_outside():
    queue = FairQueue(clock=Clock())
    order = []

    async def main():
        outside = asyncio.Event()

        async def holder():
            async with queue.seat("a"):
                order.append("a starts")
                async with queue.away():
                    await outside.wait()  # a webhook call
                order.append("a ends")

        async def other():
            async with queue.seat("b"):
                order.append("b runs")
                outside.set()

        await asyncio.gather(holder(), other())
    asyncio.run(main())
    assert order == ["a starts", "b runs", "a ends"]
    assert queue.free == queue.seats


def test_a_cancelled_waiter_gives_nothing_away():
    queue = FairQueue(clock=Clock())

    async def main():
        async with queue.seat("a"):
            waiter = asyncio.create_task(queue.seat("b").__aenter__())
            await asyncio.sleep(0)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    asyncio.run(main())
    assert queue.free == queue.seats and not queue.waiting
