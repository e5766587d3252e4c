"""`tierline replay`: what routing does to a workload, offline or through real workers."""
