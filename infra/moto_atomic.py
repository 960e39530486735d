"""moto_server with DynamoDB's atomicity: every DynamoDB request runs alone.

DynamoDB applies each conditional write and transaction atomically; moto's threaded server
checks a condition and then writes without a lock, so two concurrent guarded decrements can
both pass (seen here: 11 of 25 `credits >= 1` decrements succeeded on 10 credits). This
launcher serialises DynamoDB requests only (they never block), and leaves SQS concurrent
(its long polls must not hold others up). Arguments are moto_server's own.
"""

import sys
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _call(self, environ, start_response):
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
        with _dynamodb:
            # The body is built inside the call; list() keeps any lazy part inside the lock.
            return list(_dispatch(self, environ, start_response))
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _call

if __name__ == "__main__":
    server.main(sys.argv[1:])
