"""AWS clients (one aiobotocore session, long-lived clients), the ECS task metadata endpoint, and the table
that turns botocore's exceptions into failures."""
