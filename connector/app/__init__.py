"""The application layer: what the command line, the service, the fleet and the web page call.
``App`` is one school's opened configuration (``sync_once`` its one sync); the use cases are the
functions of the modules beside it, each taking the acting user and plain values, each change in
one transaction with its audit entry. The types they hand back are named here, so that a caller
needs nothing below this layer."""

from connector.app.context import App, app_for, open_app, read_secret_ref
from connector.config import LoadedConfig
from connector.state import DossierRow, SharedEngines
from connector.sync import SyncReport
from connector.users import User

__all__ = ["App", "DossierRow", "LoadedConfig", "SharedEngines", "SyncReport", "User", "app_for", "open_app",
           "read_secret_ref"]
