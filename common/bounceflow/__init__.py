"""bounceflow's shared package: what every service needs to speak the same contracts.

Kept small on purpose: settings, accounts, topic models, VERP, Kafka and
health/metrics helpers, logging, and the `bounceflow` command line.
"""
