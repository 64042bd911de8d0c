"""The opinbench leaderboard: definitions (`definition`), the store of requests and entries
(`store`, with Alembic migrations in ``migrations/``), submission checks (`submit`), the evaluation
worker (`worker`), validation of results against the definition (`validate`), and the CLI (`cli`)."""
