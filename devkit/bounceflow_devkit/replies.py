"""SMTP replies the devkit servers give, as named constants.

One place to read what the simulated internet answers, so a test can compare
a client's error with `replies.USER_UNKNOWN` instead of a string literal.
"""

OK = "250 2.0.0 OK"
ACCEPTED = "250 2.0.0 OK: queued"
DSN_PARAM_INVALID = "501 5.5.4 Invalid DSN parameter"
USER_UNKNOWN = "550 5.1.1 Recipient address rejected: User unknown"
CONTENT_REJECTED = "554 5.7.1 Message rejected: content refused by policy"
TRY_AGAIN_LATER = "451 4.7.1 Recipient temporarily deferred: try again later"
