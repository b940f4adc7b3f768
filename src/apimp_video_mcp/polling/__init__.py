"""Waiting for tasks: one poller per task, the schedule, and every wait ending by its deadline.

`pollers` holds the hub, the adaptive schedule and the waits; `durations` how long a model
usually takes (learned from the journal, else the catalog's assumption); `sharing` one status
request per task for concurrent `get_status` calls; `coordination` one poller per task across
the instances of a cluster (leases and change notices in the shared store).
"""
