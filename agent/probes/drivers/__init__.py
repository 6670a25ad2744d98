"""Database drivers: one module per driver (asyncpg, aiomysql), each with its one error table."""
