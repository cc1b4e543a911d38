"""Flag backends (dotenv, postgres, command): the top-level stages/ folder, imported as runbook.flags."""
