"""bounceflow classifier service: parses returned mail and links it to what we sent."""
