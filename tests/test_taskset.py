"""The TaskSet the peer ports keep their background tasks in."""

import asyncio

from zkops.server.taskset import TaskSet


def test_a_finished_task_leaves_and_cancel_all_stops_the_rest():
    async def scenario() -> None:
        tasks = TaskSet()
        done = tasks.spawn(asyncio.sleep(0))
        forever = tasks.spawn(asyncio.Event().wait())
        await done
        await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
        assert list(tasks) == [forever]
        tasks.cancel_all()
        try:
            await forever
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(0)
        assert forever.cancelled()
        assert len(tasks) == 0

    asyncio.run(scenario())
