"""moto_server with DynamoDB's atomicity: every DynamoDB request runs alone.

DynamoDB applies each conditional write and transaction atomically; moto's threaded server
checks a condition and then writes without a lock, so two concurrent guarded decrements can
both pass (seen here: 11 of 25 `credits >= 1` decrements succeeded on 10 credits). This
launcher serialises DynamoDB requests only (they never block), and leaves SQS concurrent
(its long polls must not hold others up). Arguments are moto_server's own.

DynamoDB Streams requests take the same lock, so a stream read never sees a transaction
half-way. moto rolls a cancelled transaction back by putting deep copies of its tables, taken
before it, in their place: with a stream, each copy also copied every stream record (once per
item of the transaction), which made each transaction slower as the stream grew, and a shard
iterator kept across a rollback went on reading the replaced copy, cancelled writes included.
Here a table's stream is not copied (it is not table state a rollback restores): the one
stream stays, and a cancelled transaction's records are cut from it, as DynamoDB never writes
them.

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

from moto.dynamodb.models import DynamoDBBackend  # noqa: E402
from moto.dynamodb.models.table import StreamShard  # noqa: E402

StreamShard.__deepcopy__ = lambda self, memo: self
_transact = DynamoDBBackend.transact_write_items


def _transact_keeping_the_stream(self, transact_items):
    shards = [t.stream_shard for t in self.tables.values() if getattr(t, "stream_shard", None)]
    before = [(shard, len(shard.items)) for shard in shards]
    try:
        return _transact(self, transact_items)
    except Exception:
        for shard, length in before:
            del shard.items[length:]
        raise


DynamoDBBackend.transact_write_items = _transact_keeping_the_stream

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
