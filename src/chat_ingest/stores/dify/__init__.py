"""``TABLE_LAYOUT=dify``: records written into an existing Dify database's own tables (SPEC §8)."""
