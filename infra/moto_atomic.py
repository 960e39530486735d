"""moto_server with DynamoDB's atomicity: every DynamoDB request runs alone.

DynamoDB applies each conditional write and transaction atomically; moto's threaded server
checks a condition and then writes without a lock, so two concurrent guarded decrements can
both pass (seen here: 11 of 25 `credits >= 1` decrements succeeded on 10 credits). This
launcher serialises DynamoDB requests only (they never block), and leaves SQS concurrent
(its long polls must not hold others up). Arguments are moto_server's own.

DynamoDB Streams requests take the same lock. A cancelled transaction is rolled back by
putting a copy of the table taken before it in the table's place; a shard iterator holds the
shard it was made from, so an iterator kept across such a rollback reads the old copy, with
the cancelled writes. The local stream mapping therefore asks for a fresh iterator after
the last record it handled on every poll (infra/local/src/entitlement_events.rs).

It also gives SQS FIFO queues their order back: when the messages of a group come back
after a visibility timeout, moto releases them from "in flight" one at a time while it
scans, so it skips the first ones (their group still looks in flight) and delivers a later
message alone, out of order. SQS delivers the group again from its first message, which
is what the worker's hold-back and the dead-letter redrive rely on; releasing every
visible message before the scan does the same here.
"""

import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    # DynamoDB_20120810.* and DynamoDBStreams_20120810.*: a stream read never sees a
    # transaction half-way (moto appends its records, then rolls a cancelled one back).
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with _dynamodb:
            # The body is built inside the call; list() keeps any lazy part inside the lock.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _call

from moto.sqs.models import SQSBackend  # noqa: E402

_receive = SQSBackend.receive_message


def _receive_in_order(self, queue_name, *args, **kwargs):
    queue = self.get_queue(queue_name)
    for message in list(queue.pending_messages):
        if message.visible:
            queue.pending_messages.discard(message)
    return _receive(self, queue_name, *args, **kwargs)


SQSBackend.receive_message = _receive_in_order

if __name__ == "__main__":
    server.main(sys.argv[1:])
