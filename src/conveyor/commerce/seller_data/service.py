"""The deployable seller-data app: `conveyor --app conveyor.commerce.seller_data.service:app worker`.

Importing this module builds the app from the environment (see `config.py`
for the variables), so only processes meant to run it should import it.
"""

from .config import create_app

app = create_app()
