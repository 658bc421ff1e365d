"""What the worker's watchdog logs before it exits: where each task waits."""

from __future__ import annotations

import asyncio

from agents.worker import _task_stacks


def test_the_task_dump_follows_each_await_chain_to_what_it_waits_on() -> None:
    async def flush(ev: asyncio.Event) -> None:
        await ev.wait()

    async def stage(ev: asyncio.Event) -> None:
        await flush(ev)

    async def main() -> str:
        ev = asyncio.Event()
        task = asyncio.create_task(stage(ev), name="predlog_window")
        await asyncio.sleep(0.01)
        dump = _task_stacks()
        ev.set()
        await task
        return dump

    dump = asyncio.run(main())
    chain = dump.split("task predlog_window:\n", 1)[1].splitlines()
    assert [line.rsplit(" in ", 1)[-1] for line in chain[:3]] == ["stage", "flush", "wait"]
    assert chain[3].startswith("  waits on ")
    assert "thread MainThread:" in dump  # and where each thread is (sink flushes run in one)
