"""bounceflow bounce-receiver: the inbound MX for our bounce domains.

It takes every bounce, DSN, auto-reply and complaint sent to a signed VERP
address (or a role address) on one of our bounce domains, refuses everything
else at RCPT time, and writes one `raw-bounce` record per accepted recipient
before it answers `250`.
"""
