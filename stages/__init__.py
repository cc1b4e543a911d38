"""Stage actions: flag backends (dotenv, postgres, command)."""
