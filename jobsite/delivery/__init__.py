"""Writes, second step: the RQ worker and its tasks, the enqueue API, the gate that holds applications while Lever
cannot take them, and delivery itself (pacing, reconcile, exactly once). Delivery decides; the tasks schedule."""
