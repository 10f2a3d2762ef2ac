# moto_server with DynamoDB's write semantics where moto 5.2.1 falls short
# (shared/PEERS.md), started by testpeer in place of the moto_server script:
#
# - writes are atomic: moto checks a condition and applies a write without a
#   lock, so two conditional writes to one item at once can both pass, and a
#   cancelled TransactWriteItems restores a copy of the whole table taken
#   before it, undoing the writes other requests made meanwhile (or fails
#   with "dictionary changed size during iteration" copying a table another
#   request is writing). Every item write (PutItem, UpdateItem, DeleteItem,
#   a transaction) holds one lock.
# - a transaction copies each table it writes once: moto copies the whole
#   table again for each of its items, so a transaction of 100 items over a
#   5,000-item table took 19 s.
import copy
import sys
import threading

from moto.dynamodb import models
from moto.dynamodb.models.table import Table
from moto.server import main

_writes = threading.RLock()


def _serialised(write):
    def locked(*args, **kwargs):
        with _writes:
            return write(*args, **kwargs)

    return locked


class _TablesCopiedOnce:
    """The copy module as transact_write_items sees it: the table backups it
    takes before writing (one per item, all of the same table state) are
    one copy per table."""

    def __init__(self):
        self.tables = {}

    def deepcopy(self, x, memo=None):
        if isinstance(x, Table):
            if id(x) not in self.tables:
                self.tables[id(x)] = copy.deepcopy(x)
            return self.tables[id(x)]
        return copy.deepcopy(x, memo)


_transact = models.DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    with _writes:
        # Only writes, serialised, run code of models that uses its copy.
        models.copy = _TablesCopiedOnce()
        try:
            return _transact(self, transact_items)
        finally:
            models.copy = copy


models.DynamoDBBackend.transact_write_items = _transact_write_items
for _name in ("put_item", "update_item", "delete_item"):
    setattr(models.DynamoDBBackend, _name, _serialised(getattr(models.DynamoDBBackend, _name)))

sys.exit(main())
