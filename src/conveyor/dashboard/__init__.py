"""The web dashboard: live job progress, lists, details and controls, in server-rendered pages.

from conveyor.dashboard import create_dashboard
host_app.mount("/dashboard", create_dashboard(app))   # `conveyor serve` mounts it for you
"""

from .app import create_dashboard
from .core import DashboardConfig

__all__ = ["DashboardConfig", "create_dashboard"]
