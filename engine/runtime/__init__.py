"""The engine as it runs: the worker's claim loop and pipeline, the scheduler's ticks, the
pollers, parked events, the notification outbox, retention and metrics, composed by
``service.Service``."""
