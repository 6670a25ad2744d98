"""`ecs-health-agent lint FILE...`: a task definition checked before it is deployed (the incident's literal
password, the agent's own configuration, the health check wiring, IAM and `secrets`). See docs/lint.md."""
