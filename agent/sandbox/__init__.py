"""Stand-ins for an ECS task's surroundings on one machine (moto, credentials endpoint, a throwaway
PostgreSQL). Used by the tests and by `ecs-health-agent sandbox`; never imported by the agent itself."""
