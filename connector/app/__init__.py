"""The application layer: what the command line, the service, the fleet and the web page call.
``App`` is one school's opened configuration; the use cases are its methods and the modules
beside it."""

from connector.app.context import App, app_for, open_app, read_secret_ref

__all__ = ["App", "app_for", "open_app", "read_secret_ref"]
