"""The commit/acknowledge pipeline without servers: the writer thread's order and failures,
acknowledgement order, and batches cut by readings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ingest.batch import BatchPreparer, PreparedBatch
from ingest.mqtt import Message, MqttConsumer
from ingest.routing import Router
from ingest.service import _Writer
from storage.meters import Meter


def message(mid: int, *, generation: int = 1, qos: int = 1) -> Message:
    return Message(
        mid=mid, qos=qos, topic="t", payload=b"x", identifiers=(), received_at=datetime.now(UTC),
        received_monotonic=0.0, generation=generation, redelivered=False,
    )  # fmt: skip


def test_writer_commits_in_order_and_stops_at_the_first_failure() -> None:
    done: list[int] = []
    release = threading.Event()

    def commit(messages: Sequence[Message], _batch: PreparedBatch) -> None:
        mid = messages[0].mid
        if mid == 1:
            release.wait(5)  # batch 2 waits in the slot meanwhile
        if mid == 3:
            raise OSError("connection lost")
        done.append(mid)

    writer = _Writer(commit)
    try:
        assert writer.submit([message(1)], PreparedBatch())
        assert writer.submit([message(2)], PreparedBatch())
        release.set()
        assert writer.submit([message(3)], PreparedBatch())
        failure = writer.drain()
        assert isinstance(failure, OSError)
        assert done == [1, 2]
        assert not writer.submit([message(4)], PreparedBatch())  # refused until reset
        assert done == [1, 2]
        writer.reset()
        assert writer.submit([message(5)], PreparedBatch())
        assert writer.drain() is None
        assert done == [1, 2, 5]
    finally:
        writer.close()


def test_a_failed_commit_drops_the_batch_waiting_behind_it() -> None:
    done: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def commit(messages: Sequence[Message], _batch: PreparedBatch) -> None:
        if messages[0].mid == 1:
            started.set()
            release.wait(5)
            raise OSError("server closed the connection")
        done.append(messages[0].mid)

    writer = _Writer(commit)
    try:
        writer.submit([message(1)], PreparedBatch())
        started.wait(5)
        writer.submit([message(2)], PreparedBatch())  # in the slot while 1 commits
        release.set()
        assert isinstance(writer.drain(), OSError)
        assert done == []  # batch 2 was neither committed nor (so) acknowledged
    finally:
        writer.close()


class _RecordingClient:
    """Stands in for paho's client: only records the acknowledgements it is asked for."""

    def __init__(self) -> None:
        self.acked: list[tuple[int, int]] = []

    def ack(self, mid: int, qos: int) -> int:
        self.acked.append((mid, qos))
        return 0

    def ack_many(self, mids: list[int]) -> int:
        self.acked.extend((mid, 1) for mid in mids)
        return 0


def test_acks_follow_arrival_order_and_skip_older_connections() -> None:
    consumer = MqttConsumer(
        url="mqtt://127.0.0.1:1", client_id="c", share_group="g", routes=(),
        receive_maximum=10, session_expiry_s=60,
    )  # fmt: skip
    client = _RecordingClient()
    consumer._client = client  # type: ignore[assignment]
    consumer._generation = 2
    messages = [
        message(7, generation=2),
        message(65535, generation=2),
        message(3, generation=1),  # an older connection's: redelivered, not acknowledged
        message(9, generation=2, qos=0),
        message(1, generation=2),
    ]
    assert consumer.ack(messages) == 3
    consumer._flush_acks()  # what the network loop does next
    assert client.acked == [(7, 1), (65535, 1), (1, 1)]


@pytest.mark.parametrize("max_rows", [1, 3, 250, 10_000])
def test_batches_cut_by_readings_cover_the_messages_in_order(max_rows: int) -> None:
    class _Registry:
        def resolve(self, *_: object) -> object:
            raise AssertionError("not reached: no route")

    preparer = BatchPreparer(Router({}), _Registry())  # type: ignore[arg-type]
    messages = [message(i) for i in range(1, 8)]
    chunks = list(preparer.prepare_split(messages, None, max_rows))  # type: ignore[arg-type]
    assert [m for chunk, _ in chunks for m in chunk] == messages
    assert sum(len(b.dead_letters) for _, b in chunks) == len(messages)


def test_refused_messages_keep_their_place_whichever_stage_refuses_them() -> None:
    # Parsing refuses some messages at once, plausibility checks refuse others a batch later.
    class _Registry:
        def resolve(self, _conn: object, fmt: str, series: object, _topic: str) -> Meter:
            return Meter(7, None, "electricity", "W", False, fmt, "urn:dev:a", "p", None)

    def senml(value: float, t: int = 1_735_689_600) -> bytes:
        return f'[{{"bn":"urn:dev:a:","n":"p","u":"W","v":{value},"t":{t}}}]'.encode()

    payloads = [senml(1.0), senml(1e300), b"not json", senml(2.0, 1_735_689_660), senml(3.0, 4e9)]
    messages = [
        Message(mid=i, qos=1, topic="senml/a", payload=p, identifiers=(2,),
                received_at=datetime.now(UTC), received_monotonic=0.0, generation=1,
                redelivered=False)
        for i, p in enumerate(payloads, start=1)
    ]  # fmt: skip
    preparer = BatchPreparer(Router({}), _Registry())  # type: ignore[arg-type]
    batch = preparer.prepare(messages, None)  # type: ignore[arg-type]
    assert batch.values.tolist() == [1.0, 2.0]
    assert batch.meter_ids.tolist() == [7, 7]
    assert [d.payload for d in batch.dead_letters] == [payloads[1], payloads[2], payloads[4]]
    assert "outside plausible range" in batch.dead_letters[0].reason
    assert "ahead of" in batch.dead_letters[2].reason
    assert batch.formats == {"senml": 2}
    assert batch.dead_reasons == {"invalid_value": 2, "malformed": 1}
