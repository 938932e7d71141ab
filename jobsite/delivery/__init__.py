"""Writes, second step: delivering each accepted application to Lever exactly once (the gate that holds applications
while Lever cannot take them, pacing, reconcile) and the enqueue API every RQ job goes through. Delivery decides;
the worker's tasks (jobsite/worker/) schedule."""
