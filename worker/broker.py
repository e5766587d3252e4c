"""What the worker asks of its broker: the queues it consumes and the transport's options.

Redis (the default) emulates acknowledgements: a message a dead worker held stays in the
broker's ``unacked`` set until the visibility timeout has passed since its delivery, then
a sweep of any live worker puts it back. The timeout follows the hard time limit
(`Settings.visibility_s`), and the sweep runs often enough to notice it in seconds.

RabbitMQ (``amqp://``) requeues a dead worker's messages as soon as its connection drops:
quorum queues (replicated, with a delivery count), publisher confirms (a send returns
once the broker has the message), and per-consumer prefetch (quorum queues refuse a
global QoS; Celery detects them and stops asking for one).

On Redis the worker uses kombu's Redis transport with one change (`Transport`):
a channel closed while its connection is lost still closes. Celery 5.7 with kombu 5.7
stopped the whole worker ("Unrecoverable error: AttributeError") when Redis went away
while it waited for jobs (a BRPOP pending) with a job in flight: the channel's close
first reads the pending BRPOP, which raised on the lost connection and left the channel
open; Celery then discarded the transport and closed the channel again, and its restore
of the job's unacknowledged message found no connection settings to connect with.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

import kombu.transport
from kombu.entity import Queue
from kombu.transport import TRANSPORT_ALIASES, redis

from contract.names import QUEUE_CONVERSATIONS, QUEUE_EXTRACTION
from worker.settings import Settings

QUEUES = (QUEUE_CONVERSATIONS, QUEUE_EXTRACTION)
# Seconds between sweeps of the unacked set, at most: a tenth of the visibility timeout.
RESTORE_INTERVAL_MAX_S = 10
BRPOP_TIMEOUT_S = 5  # above Celery's 2 s drain timeout


def _read_pending(channel: Any) -> None:
    """Read `channel`'s pending BRPOP, if any, whatever the connection says (it clears the
    channel's in-poll state either way), so that kombu's close that follows goes on."""
    if channel._in_poll and not channel.closed:
        try:
            channel._brpop_read()
        except Empty:
            pass
        except channel.connection_errors:
            pass  # the connection is lost: the close goes on (and restores what it can)


class Channel(redis.Channel):
    """kombu's Redis channel, whose close goes on when its pending BRPOP cannot be read."""

    def close(self) -> None:
        _read_pending(self)
        super().close()  # type: ignore[no-untyped-call]


class SentinelChannel(redis.SentinelChannel):
    """kombu's Sentinel channel, with the same close as `Channel`."""

    def close(self) -> None:
        _read_pending(self)
        super().close()  # type: ignore[no-untyped-call]


class Transport(redis.Transport):
    Channel = Channel


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel


def use_our_redis_transports() -> None:
    """Have kombu open ``redis://``, ``rediss://`` and ``sentinel://`` brokers with `Transport`
    and `SentinelTransport` (the schemes keep their names: kombu's TLS default for
    ``rediss``, the URLs Flower and the logs show). Idempotent."""
    ours = {"redis": f"{__name__}:Transport", "rediss": f"{__name__}:Transport",
            "sentinel": f"{__name__}:SentinelTransport"}
    TRANSPORT_ALIASES.update(ours)
    for scheme in ours:  # a scheme kombu resolved before this stays cached: resolve it again
        kombu.transport._transport_cache.pop(scheme, None)


def is_amqp(url: str) -> bool:
    """Whether `url` names a RabbitMQ (AMQP) broker."""
    return url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def queues(broker_url: str) -> tuple[Queue, ...]:
    """Every tierline queue: a worker started without ``-Q`` consumes them all."""
    arguments = {"x-queue-type": "quorum"} if is_amqp(broker_url) else None
    return tuple(Queue(name, routing_key=name, queue_arguments=arguments) for name in QUEUES)  # type: ignore[no-untyped-call]


def transport_options(settings: Settings, *, max_connections: int) -> dict[str, Any]:
    """kombu's transport options for the configured broker."""
    if is_amqp(settings.broker):
        return {"confirm_publish": True}
    visibility = settings.visibility_s
    return {
        "visibility_timeout": visibility,
        # kombu sweeps every interval × throttle seconds (100 s by default): with a
        # visibility timeout of minutes, sweep every few seconds instead.
        "unacked_restore_interval": max(1, min(RESTORE_INTERVAL_MAX_S, visibility // 10)),
        "unacked_restore_throttle": 1,
        # A gevent or threads worker drains the broker without Celery's event loop; kombu
        # then sweeps only after a poll that saw nothing, and a BRPOP that times out
        # within the poll (1 s, in a 2 s poll) always shows up as something: no sweep
        # ever ran. A BRPOP longer than the poll lets idle polls sweep.
        "polling_interval": BRPOP_TIMEOUT_S,
        "max_connections": max_connections,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,  # kombu's default is none: a silent host would hold the consumer
        "health_check_interval": settings.redis_health_check_s,
    }


def queue_options(broker_url: str) -> dict[str, Any]:
    """Celery settings for the queues on this broker."""
    options: dict[str, Any] = {"task_queues": queues(broker_url)}
    if is_amqp(broker_url):
        options.update(task_default_queue_type="quorum", task_create_missing_queue_type="quorum",
                       worker_detect_quorum_queues=True)
    return options
