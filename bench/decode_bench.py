"""Decoding throughput against bare JSON parsing of the same bodies, in one run.

    .venv/bin/python bench/decode_bench.py [--events 200000] [--fetch 500]
    PREDLOG_NATIVE=0 .venv/bin/python bench/decode_bench.py   # the Python decoders only

Two mixes:
- Seldon v1: 10-feature SeldonMessage ndarray requests and their responses, as
  Kafka-mode records (bare headers, body = value) through `decode_kafka_record`,
  against `orjson.loads(value)` of the same values;
- Seldon v2: OIP protobuf ModelInferRequest/Response with raw contents through
  `decode_kafka_record`, against `orjson.loads` of the equivalent OIP JSON bodies.
Prints events/s for each and the ratio decode/baseline (target: at most 3x).

Batch rows: the same records as fetch-sized lists (`--fetch`, 500) through
`stream.decode.batch.decode_kafka_batch` into one columnar `EventBatch` per list, against
`orjson.loads` of the same values (for v2, of the equivalent JSON bodies); target: ratio
at most 1.0 (columnar decoding at least as fast as parsing the JSON). `batch` builds
each fetch afresh just before it is timed (as a client hands a fetch over) and sums the
best of 5 per fetch, for both sides; `batch,held` decodes fetches all built beforehand
(cold in the CPU caches) against the first row's baseline. With PREDLOG_NATIVE=0 the
batch is built from the Python decoders' events.

Both mixes are what the compiled decoder (native/, `stream.decode.native`) answers;
`decode_kafka_record` builds the very events the Python decoders would (the differential
tests in tests/unit/test_decode_native.py hold it to that). Measured on the 2-core
development VM with `--events 100000`, best of 3 per side: v1 about 2.2-2.7x
(~590,000 events/s), v2 about 1.3-1.4x (~1,250,000 events/s); the Python decoders alone
(PREDLOG_NATIVE=0) 7.3x and 6.0x. The ratios move by a few tenths between runs when other
work shares the machine.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import orjson

from stream.decode.batch import decode_kafka_batch
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.oip.inference_pb2 import ModelInferRequest, ModelInferResponse
from stream.events import DeadLetter


def seldon_records(n: int, rng: random.Random):
    names = [f"f{i}" for i in range(10)]
    out = []
    for i in range(n // 2):
        rid = f"req-{i}".encode()
        base = [(b"requestid", rid), (b"modelid", b"classifier"),
                (b"inferenceservicename", b"iris"), (b"namespace", b"prod"),
                (b"endpoint", b"default"), (b"content-type", b"application/json")]
        req = {"data": {"names": names, "ndarray": [[rng.random() for _ in range(10)]]}}
        resp = {"data": {"names": ["proba"], "ndarray": [[rng.random()]]},
                "meta": {"requestPath": {"classifier": "seldonio/sklearnserver:1.17.1"}}}
        out.append(([(b"type", b"io.seldon.serving.inference.request"), *base],
                    orjson.dumps(req)))
        out.append(([(b"type", b"io.seldon.serving.inference.response"), *base],
                    orjson.dumps(resp)))
    return [([(k.decode(), v) for k, v in h], v) for h, v in out]


def v2_records(n: int, rng: random.Random):
    out, json_bodies = [], []
    for i in range(n // 2):
        x = np.array([rng.random() for _ in range(10)], dtype="<f4")
        req = ModelInferRequest(model_name="iris", model_version="1", id=f"r{i}")
        req.inputs.add(name="predict", datatype="FP32", shape=[1, 10])
        req.raw_input_contents.append(x.tobytes())
        resp = ModelInferResponse(model_name="iris", model_version="1", id=f"r{i}")
        resp.outputs.add(name="proba", datatype="FP64", shape=[1, 1])
        resp.raw_output_contents.append(np.array([rng.random()], dtype="<f8").tobytes())
        out.append(("seldon.prod.model.iris.inputs", f"r{i}".encode(), req.SerializeToString()))
        out.append(("seldon.prod.model.iris.outputs", f"r{i}".encode(), resp.SerializeToString()))
        json_bodies.append(orjson.dumps({"id": f"r{i}", "inputs": [
            {"name": "predict", "datatype": "FP32", "shape": [1, 10], "data": x.tolist()}]}))
        json_bodies.append(orjson.dumps({"id": f"r{i}", "outputs": [
            {"name": "proba", "datatype": "FP64", "shape": [1, 1], "data": [rng.random()]}]}))
    return out, json_bodies


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--fetch", type=int, default=500, help="records per batch (batch rows)")
    args = ap.parse_args()
    from agents.settings import Settings
    from stream.decode import native

    native.set_enabled(Settings().native)  # PREDLOG_NATIVE=0: the Python decoders only
    rng = random.Random(1)

    seldon = seldon_records(args.events, rng)

    def decode_seldon():
        for h, v in seldon:
            item = decode_kafka_record("seldon", None, v, h, 1.7e12)
            assert not isinstance(item, DeadLetter)

    def parse_seldon():
        for _, v in seldon:
            orjson.loads(v)

    v2, v2_json = v2_records(args.events, rng)

    def decode_v2():
        for topic, key, v in v2:
            item = decode_kafka_record(topic, key, v, [], 1.7e12)
            assert not isinstance(item, DeadLetter)

    def parse_v2_json():
        for v in v2_json:
            orjson.loads(v)

    # Batch rows: fetch-sized lists. "batch" builds each fetch's records just before it is
    # decoded, as a Kafka client hands a fetch over (new value bytes, header names decoded
    # per record as aiokafka does), and times only the decoding, against orjson.loads of
    # the values of a fetch built the same way; "batch,held" decodes fetches all built
    # beforehand (their objects mostly out of the CPU caches) against the first rows'
    # baseline.
    ts, f, n_events = 1_767_225_600_000, args.fetch, len(seldon)
    v1_raw = [([(k.encode(), x) for k, x in h], v) for h, v in seldon]

    def v1_fetch(j):
        return [("seldon", None, bytes(memoryview(v)), [(k.decode(), x) for k, x in h], ts, 0,
                 j + i) for i, (h, v) in enumerate(v1_raw[j:j + f])]

    def v2_fetch(j):
        return [(t, k, bytes(memoryview(v)), [], ts, 0, j + i)
                for i, (t, k, v) in enumerate(v2[j:j + f])]

    def fetch_rows(build, json_values=None, repeat=5):
        """(decode, parse) timers: each fetch built afresh `repeat` times, the best time of
        each fetch summed (robust to the other work sharing the machine). parse reads the
        fetch's values, or for v2 the JSON bodies of the same messages (fresh copies)."""
        def timer(op):
            def run():
                best = [float("inf")] * len(range(0, n_events, f))
                for _ in range(repeat):
                    for k, j in enumerate(range(0, n_events, f)):
                        fetch = build(j)
                        arg = fetch if op is decode_fetch else (
                            [r[2] for r in fetch] if json_values is None
                            else [bytes(memoryview(v)) for v in json_values[j:j + f]])
                        t0 = time.perf_counter()
                        op(arg)
                        best[k] = min(best[k], time.perf_counter() - t0)
                return sum(best)
            return run

        return timer(decode_fetch), timer(parse_values)

    def decode_fetch(fetch):
        batch, dead = decode_kafka_batch(fetch)
        assert not dead and len(batch) == len(fetch)

    def parse_values(values):
        for v in values:
            orjson.loads(v)

    held_v1 = [v1_fetch(j) for j in range(0, n_events, f)]

    def decode_held():
        for fetch in held_v1:
            batch, dead = decode_kafka_batch(fetch)
            assert not dead and len(batch) == len(fetch)

    n = n_events
    rows = [("seldon-v1 ndarray", lambda: timed(decode_seldon), lambda: timed(parse_seldon)),
            ("seldon-v2 protobuf", lambda: timed(decode_v2), lambda: timed(parse_v2_json)),
            ("seldon-v1 batch", *fetch_rows(v1_fetch)),
            ("seldon-v2 batch", *fetch_rows(v2_fetch, v2_json)),
            ("seldon-v1 batch,held", lambda: timed(decode_held), lambda: timed(parse_seldon))]
    for name, dec, base in rows:
        t_dec, t_base = dec(), base()
        print(f"{name:20s} decode {n / t_dec:12,.0f} ev/s   orjson.loads {n / t_base:12,.0f} ev/s"
              f"   ratio {t_dec / t_base:5.2f}x")


if __name__ == "__main__":
    main()
