"""The RQ tasks under their old dotted paths (`jobsite.tasks.deliver`, …), for jobs queued before the tasks moved to
`jobsite.worker.tasks`.

RQ stores each job's function by its path in Redis, so after an upgrade a queue may still hold jobs that name these:
a scheduled retry (up to 15 minutes away), a confirmation email being retried (about four hours), a probe, a failure
callback. Nothing in jobsite imports this module. Remove it once no queue can hold a job from a version before
the move: a release later, after every worker has run the new version for a day.
"""

from .worker.tasks import (
    deliver,
    delivery_crashed,
    probe,
    send_confirmation_email,
    sync_pipeline,
    tag_opportunity,
)

__all__ = ["deliver", "delivery_crashed", "probe", "send_confirmation_email", "sync_pipeline", "tag_opportunity"]
