"""bounceflow ingress: takes mail from customers over SMTP and REST and puts
one record per recipient on the `outgoing` topic, answering success only
after Kafka acknowledged all of them."""
