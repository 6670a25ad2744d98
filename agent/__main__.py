"""`python -m agent` is the `ecs-health-agent` command."""

from agent.cli import main

raise SystemExit(main())
