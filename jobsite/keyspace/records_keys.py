"""The keys of `records/`: application records (`store.py`), their files (`uploads.py`), the console's search index
(`search.py`)."""

from __future__ import annotations

from .. import keyspace

# store.py: one application, its attempts and the sets that find it
RECORD = keyspace.name("app:{}")  # hash: one application (its receipt)
STATE = keyspace.name("apps:state:{}")  # set: the receipts in one state
ALL = keyspace.name("apps:all")  # receipt -> created_at, every application
ATTEMPTS = keyspace.name("app:{}:attempts")
DELIVERED_LOG = keyspace.name("apps:delivered")  # receipt -> delivered_at, for the dashboard's rates and charts
CONTACT = keyspace.name("apps:contact:{}")  # set of the receipts of one person (Lever's contact id): their candidacies
# a retry's receipt -> the receipt of the application it repeated (idempotency key)
SAME_AS = keyspace.name("app:{}:same_as")

# uploads.py: hash: form field name -> the file's bytes (or OUTSIDE_MARK -> the folder in the object store)
KEY = keyspace.name("upload:{}")
# sorted set: the store folder of every application with files there, by time written
OUTSIDE = keyspace.name("upload:outside")

# search.py: the console's search index
REF = keyspace.name("search:ref:{}")  # zset: the members with this reference (8 characters, no dash)
EMAIL = keyspace.name("search:email:{}")  # zset: the members with this email (a hash of it, case folded)
WORD = keyspace.name("search:word:{}")  # zset: the members whose name has this word (a hash of it, folded)
OF = keyspace.name("search:of:{}")  # set: the index keys holding one member, to forget it exactly
# how far the records of a kind stored before the index existed are in it ("done")
BUILT = keyspace.name("search:built:{}")
BUILDING = keyspace.name("search:building:{}")  # one process builds at a time
SCRATCH = keyspace.name("search:tmp:{}")  # a search of several words: their intersection, deleted in its transaction
