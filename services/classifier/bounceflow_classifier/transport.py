"""Faust's Kafka transport, with the three changes the classifier needs under load.

Faust hard-codes how its consumer fetches and tracks offsets; a profile of
the worker at 1,000 records/s showed where that costs CPU, and these
subclasses change only that:

- Fetch like the other services: `kafka_fetch_min_bytes` /
  `kafka_fetch_max_wait_ms` instead of Faust's 1 byte / 1.5 s (one fetch
  request per few records under load), and `read_committed`, so records of
  aborted ingress or bounce-receiver transactions are not joined or classified.
- Offset gaps without re-sorting: each transaction's commit marker upstream
  is an offset the stream never sees. Faust records each such gap in an
  interval tree and calls `merge_overlaps()` (a rebuild of the whole tree)
  every time: a fifth of the worker's CPU. A partition's gaps arrive in
  offset order and never overlap, so the new interval is appended as it is;
  only one that starts before the tree's end takes Faust's path.

And one the agents need: they write outputs through the producer, so a
failed send reaches no Faust machinery; `Consumer.refuse_commits` makes the
consumer commit no more offsets and crash instead (see agents.py).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """The thread that runs aiokafka's consumer, created with our fetch settings."""

    def _create_worker_consumer(self, transport: Any):
        consumer = super()._create_worker_consumer(transport)
        fetch = self.app.bounceflow_fetch  # set by `App` from the settings
        # Faust passes no way to set these; the consumer reads them when it starts.
        consumer._fetch_min_bytes = fetch["min_bytes"]
        consumer._fetch_max_wait_ms = fetch["max_wait_ms"]
        consumer._isolation_level = "read_committed"
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's consumer with the cheap gap bookkeeping described above."""

    _send_failure: BaseException | None = None

    def refuse_commits(self, reason: BaseException) -> None:
        """An output was not written: commit no offset from now on; the next commit crashes the worker."""
        self._send_failure = reason

    async def _commit(self, offsets: Any) -> bool:
        # Faust calls this after flushing the producer; the failure, if any, is known by then.
        if self._send_failure is not None:
            await self.crash(self._send_failure)
            return False
        return await super()._commit(offsets)

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        committed = self._committed_offset[tp]
        if committed is not None:
            offset_from = max(offset_from, committed + 1)
        if offset_from > offset_to:
            return
        gaps = self._gap[tp]
        if gaps and offset_from < gaps.end():
            await super()._add_gap(tp, offset_from, offset_to)  # out of order: merge as Faust does
            return
        gaps.addi(offset_from, offset_to + 1)  # intervals exclude the end


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


class App(faust.App):
    """`faust.App` on the transport above; `fetch` = {"min_bytes", "max_wait_ms"}."""

    def __init__(self, *args: Any, fetch: dict[str, int], **kwargs: Any) -> None:
        self.bounceflow_fetch = fetch
        super().__init__(*args, **kwargs)

    def _new_transport(self):
        url = self.conf.broker_consumer[0]
        if url.scheme != "kafka":  # e.g. memory:// in unit tests
            return super()._new_transport()
        return Transport(self.conf.broker_consumer, self)
