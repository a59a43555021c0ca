"""bounceflow sender: takes `outgoing` records to the recipients' mail servers."""
