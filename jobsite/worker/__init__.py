"""The worker process: an RQ worker with its scheduler, and the tasks it runs. The tasks turn what the flows decide
(delivery, follow-ups, the confirmation email, retention, the spool) into RQ scheduling, so they sit above all of
them; the flows never import the tasks (they enqueue by dotted path, `delivery.jobs`)."""
