"""Writes, first step: a candidate's form or JSON is validated against the posting's form, then accepted (persisted
and enqueued in one Redis transaction, or spooled) and answered with a receipt."""
