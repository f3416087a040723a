"""Start a real server (uvicorn, gunicorn, ...) on 127.0.0.1 for a test, and stop it afterwards."""

from messages_integrations._serve import HOST, RunningServer, free_port, serve

__all__ = ["HOST", "RunningServer", "free_port", "serve"]
