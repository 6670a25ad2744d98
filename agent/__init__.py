"""ecs-health-agent: proves an ECS task can reach its database, and says why when it cannot."""

__version__ = "0.1.0"
