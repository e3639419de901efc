from chat_ingest.cli import app

app()
