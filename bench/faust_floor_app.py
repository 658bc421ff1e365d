"""A Faust app that does nothing but consume: what Faust's per-event delivery costs.

Started by `bench/worker_bench.py` as `python bench/faust_floor_app.py worker -l warn`
with FLOOR_BOOTSTRAP, FLOOR_TOPIC, FLOOR_TOTAL, FLOOR_PORT and FLOOR_DATADIR set. One agent
takes the topic in batches the way Faust delivers them (`take_events`, one event at a
time underneath; predlog's stages used this before `agents/faust_adapter.py`), with the same
batch settings and raw serializers, counts, and prints
`FLOOR <events> <seconds> <cpu seconds>` from its first batch to the last event, then exits.
"""

from __future__ import annotations

import os
import time

import faust

TOTAL = int(os.environ["FLOOR_TOTAL"])
app = faust.App(f"floor-{os.environ['FLOOR_TOPIC']}",
                broker=f"kafka://{os.environ['FLOOR_BOOTSTRAP']}", store="memory://",
                web_host="127.0.0.1", web_bind="127.0.0.1",
                web_port=int(os.environ["FLOOR_PORT"]), datadir=os.environ["FLOOR_DATADIR"],
                consumer_auto_offset_reset="earliest")
topic = app.topic(os.environ["FLOOR_TOPIC"], key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")
state = {"n": 0, "t0": 0.0, "cpu0": 0.0}


@app.agent(topic)
async def count(stream):
    async for batch in stream.take_events(1000, within=0.5):
        if not state["n"]:
            state["t0"], state["cpu0"] = time.monotonic(), time.process_time()
        state["n"] += len(batch)
        if state["n"] >= TOTAL:
            print(f"FLOOR {state['n']} {time.monotonic() - state['t0']:.3f} "
                  f"{time.process_time() - state['cpu0']:.3f}", flush=True)
            os._exit(0)


if __name__ == "__main__":
    app.main()
