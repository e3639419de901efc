"""Settings that decide how instances cooperate and what a deployment trusts."""

from chat_ingest.config import Settings


def test_instances_agree_on_the_cursor_key_however_their_urls_are_spelled() -> None:
    spellings = [
        "mysql+asyncmy://root@127.0.0.1:3306/chat",
        "mysql+aiomysql://ingest:old-password@db.internal/chat?charset=utf8mb4",
        "mariadb+asyncmy://ingest:new-password@10.0.0.5:3306/chat",
    ]
    keys = {Settings(database_url=url).cursor_key for url in spellings}
    assert len(keys) == 1
    other_database = Settings(database_url="mysql+asyncmy://root@127.0.0.1/other").cursor_key
    assert other_database not in keys
    shared = {Settings(database_url=url, cursor_secret="s" * 32).cursor_key for url in spellings}
    assert len(shared) == 1 and shared != keys
