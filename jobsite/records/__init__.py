"""The record store: every accepted application in Redis (its answers, state and file bytes) until Lever has it, or
in the web machine's spool while Redis is down; the application as stored and as Lever's apply body; file kinds."""
