"""One idempotent producer per process, replaced whole after any failure.

After a broker outage longer than the request timeout, aiokafka's idempotent producer has
handed out sequence numbers to batches that expired unsent; the broker then answers every
later batch with OutOfOrderSequenceNumber, the sender task dies and every future send
fails or hangs. No retry of the same producer can recover, so the relay and the dead-letter
path both reset this handle on any send failure: the next producer gets a new producer id
and starts its sequences afresh.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from shared.messaging import metrics

logger = logging.getLogger(__name__)

ProducerFactory = Callable[[], AIOKafkaProducer]

# Stopping a producer flushes its pending batches; with the broker gone that never ends.
STOP_TIMEOUT_S = 5.0


class ProducerUnavailableError(Exception):
    """No started producer right now (broker unreachable since the last reset)."""


class ProducerHandle:
    """Holds the current producer; `reset` swaps in a new one, once per failure."""

    def __init__(self, factory: ProducerFactory, *, name: str = "producer") -> None:
        self._factory = factory
        self._producer: AIOKafkaProducer | None = None
        self._generation = 0
        self._lock = asyncio.Lock()
        self.name = name

    @property
    def generation(self) -> int:
        """Increases with every producer this handle starts; callers reset only their own."""
        return self._generation

    def current(self) -> AIOKafkaProducer:
        """The started producer; raises ProducerUnavailableError when there is none."""
        producer = self._producer
        if producer is None:
            raise ProducerUnavailableError(f"{self.name}: no producer (broker unreachable)")
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None and task.done():
            # The sender died (e.g. OutOfOrderSequenceNumber): nothing sent through this
            # producer will ever be delivered.
            raise ProducerUnavailableError(f"{self.name}: producer's sender task has died")
        return producer

    async def start(self) -> None:
        """Starts the first producer (raises when the broker is unreachable)."""
        async with self._lock:
            if self._producer is None:
                await self._start_new()

    async def reset(self, *, seen_generation: int | None = None) -> None:
        """Replaces the producer; a no-op if another caller already replaced the one seen.

        Raises when the new producer cannot start; the caller retries with backoff.
        """
        async with self._lock:
            already_replaced = seen_generation is not None and seen_generation != self._generation
            if already_replaced and self._producer is not None:
                return
            old, self._producer = self._producer, None
            if old is not None:
                await _stop_quietly(old)
            metrics.PRODUCER_RESETS.labels(self.name).inc()
            logger.warning("kafka producer %s replaced after a send failure", self.name)
            await self._start_new()

    async def stop(self) -> None:
        """Flushes and stops the current producer (bounded in time)."""
        async with self._lock:
            old, self._producer = self._producer, None
            if old is not None:
                await _stop_quietly(old)

    async def _start_new(self) -> None:
        producer = self._factory()
        try:
            await producer.start()
        except BaseException:
            await _stop_quietly(producer)
            raise
        self._producer = producer
        self._generation += 1


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), STOP_TIMEOUT_S)
    except (TimeoutError, Exception):
        # Its pending batches are lost with it; the outbox still has their rows unmarked.
        sender = getattr(producer, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await producer.client.close()
