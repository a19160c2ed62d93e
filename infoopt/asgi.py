"""The ASGI entry point for uvicorn and other servers: `infoopt.asgi:app`."""

from infoopt.app import create_app

app = create_app()
