"""bounceflow notifier: logs every delivery result and classified bounce to
ClickHouse, serves them over a read API, and (see dispatcher.py) calls the
feedback loops and forwards bounces."""
