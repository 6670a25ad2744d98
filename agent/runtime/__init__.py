"""Runtime: the plan of probes, rounds in dependency order, the scheduler, readiness and the state snapshot."""
