"""The one-machine topology: redis-server + N gunicorn replicas of the app + HAProxy.

It is the AWS deployment in miniature (ARCHITECTURE.md, "On one machine"): HAProxy plays
the ALB and its target group, the replicas play the Auto Scaling Group's instances and
redis-server plays ElastiCache. `pyscale local up|roll|status` drive it; the integration
tests and `make bench` use the same code through `LocalTopology`.
"""
