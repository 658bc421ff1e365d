"""Decoding throughput against bare JSON parsing of the same bodies, in one run.

    .venv/bin/python bench/decode_bench.py [--events 200000]
    PREDLOG_NATIVE=0 .venv/bin/python bench/decode_bench.py   # the Python decoders only

Two mixes:
- Seldon v1: 10-feature SeldonMessage ndarray requests and their responses, as
  Kafka-mode records (bare headers, body = value) through `decode_kafka_record`,
  against `orjson.loads(value)` of the same values;
- Seldon v2: OIP protobuf ModelInferRequest/Response with raw contents through
  `decode_kafka_record`, against `orjson.loads` of the equivalent OIP JSON bodies.
Prints events/s for each and the ratio decode/baseline (target: at most 3x).

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

    n = len(seldon)
    for name, dec, base in (("seldon-v1 ndarray", decode_seldon, parse_seldon),
                            ("seldon-v2 protobuf", decode_v2, parse_v2_json)):
        t_dec, t_base = timed(dec), timed(base)
        print(f"{name:20s} decode {n / t_dec:12,.0f} ev/s   orjson.loads {n / t_base:12,.0f} ev/s"
              f"   ratio {t_dec / t_base:5.2f}x")


if __name__ == "__main__":
    main()
