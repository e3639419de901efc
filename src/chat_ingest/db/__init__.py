"""Tables, engine setup, transactions and migrations."""
