"""bounceflow devkit: the simulated internet the tests and `make run` talk to.

`mx_simulator.MxSimulator` plays remote MX servers (accepting, refusing,
deferring, bouncing), `mailbox.MailSink` plays any mailbox that only has to
capture what arrives, and `bounce_mail` builds the returned mails a real
internet sends back.
"""
