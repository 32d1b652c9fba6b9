"""Analysis over assembled traces: root cause, critical path, latency, clock skew."""
