"""The keys of `console/`: recruiters' accounts, sessions and sign-in throttles, integrators' API clients, the audit
trail."""

from __future__ import annotations

from .. import keyspace

# accounts.py
USERS = keyspace.name("users")  # set: the console accounts' emails
USER = keyspace.name("user:{}")  # hash: one account (its email, folded)
SESSIONS = keyspace.name("sessions:{}")  # one account's sessions
SIGNIN = keyspace.name("signin:{}:{}")  # one account's (a hash of its email) failed sign-ins from one address

# api_keys.py
CLIENTS = keyspace.name("apiclients")  # every client's name, revoked ones too
CLIENT = keyspace.name("apiclient:{}")  # hash: one client (its name)
CLIENT_BY_KEY = keyspace.name("apiclient:key:{}")  # a key's digest -> its client's name

# audit.py
AUDIT = keyspace.name("audit")  # recruiters' and operators' actions
API_USE = keyspace.name("audit:api")  # requests made with an integrator key
